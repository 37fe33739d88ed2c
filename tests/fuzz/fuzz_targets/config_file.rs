//! The configuration file: TOML, options, filters, validation and rules.
//! Any text gives settings or an error naming the file; nothing panics.
#![no_main]

use dataservice_sync::config_file::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let flags = vec![
        ("interval".to_string(), true),
        ("socket-path".to_string(), true),
        ("no-logging".to_string(), false),
    ];
    match parse(text, std::path::Path::new("fuzz.toml"), &flags) {
        Ok(settings) => assert!(settings.rules.rules.len() <= 32),
        Err(e) => assert!(e.to_string().starts_with("fuzz.toml")),
    }
});
