//! The examples of the README and of docs/ work as they stand: every TOML
//! block passes `config check`, and the rules example writes the keys and
//! values its page promises.

use std::path::{Path, PathBuf};

use dataservice_sync_sim::PollingMode;
use serde_json::json;

use crate::harness::{run_to_end, temp_dir, wait_until};
use crate::{SECOND, peers};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ```toml blocks of a Markdown file, in order.
fn toml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repository().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repository().join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn config_check(path: &Path) -> (Option<i32>, String) {
    let (code, out, err) = run_to_end(&["config", "check", path.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[test]
fn every_toml_example_of_the_docs_and_the_shipped_file_pass_config_check() {
    let dir = temp_dir("docs-toml");
    let mut checked = 0;
    for file in markdown_files() {
        for (i, block) in toml_blocks(&file).into_iter().enumerate() {
            let path = dir.join(format!("block-{checked}.toml"));
            std::fs::write(&path, &block).unwrap();
            let (code, output) = config_check(&path);
            assert_eq!(
                code,
                Some(0),
                "{} TOML block {}:\n{block}\n{output}",
                file.display(),
                i + 1
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} TOML blocks found");
    let (code, output) = config_check(&repository().join("dist/config.toml"));
    assert_eq!(code, Some(0), "{output}");
}

#[test]
fn the_rules_example_writes_the_keys_values_and_types_its_page_promises() {
    let page = repository().join("docs/configuration.md");
    let example = toml_blocks(&page)
        .into_iter()
        .find(|b| b.starts_with("# rules example"))
        .expect("the rules example");
    let config = temp_dir("docs-rules").join("rules.toml");
    std::fs::write(&config, example).unwrap();
    let doc = br#"{"Boiler-1": {"t-001": {"value": 1000, "status": "ok"}, "t-002": {"value": 12, "status": "ok"}}, "Pump-1": {"speed": {"value": 1450.7, "status": "ok"}}}"#;
    let p = peers("docs-rules", PollingMode::Body(doc.to_vec()));
    let mut sync = p.start_sync(&[
        "--config",
        config.to_str().unwrap(),
        "--interval",
        "3600",
        "--register",
        "missing",
    ]);
    assert!(
        wait_until(10 * SECOND, || p.dataservice.values().len() == 3),
        "{}",
        sync.log()
    );
    assert!(sync.terminate().success());
    let store = p.dataservice.store();
    let got: Vec<(String, serde_json::Value, String)> = store
        .points()
        .values()
        .map(|point| {
            (
                point.key.clone(),
                point.value.clone(),
                point.data_type.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Boiler-1/t-001", json!(60.0), "float"),
            ("Boiler-1/t-002", json!(-38.8), "float"),
            ("Pump-1:speed", json!(1451), "int"),
        ]
        .map(|(k, v, t)| (k.to_string(), v, t.to_string()))
    );
}
