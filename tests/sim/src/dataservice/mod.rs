//! The Data-Service double (PROTOCOLS.md §2 and §3), odd behaviour included:
//! one request per connection on a Unix socket with a listen backlog of 5,
//! writes to unregistered keys dropped but answered `{"ok": true}`, ids
//! random per process (new after [`DataServiceDouble::restart`]), bulk
//! results in request order, address ranges of 1,000 per data type.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use serde_json::{Value, json};

use crate::http_server::{HttpRequest, HttpServer, Reply};
use crate::pyjson::dumps;

mod store;

pub use self::store::*;

/// A running Data-Service double.
pub struct DataServiceDouble {
    socket_path: PathBuf,
    http: HttpServer,
    store: Arc<Mutex<Store>>,
    stop: Arc<AtomicBool>,
    ipc: Option<JoinHandle<()>>,
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// A Unix listener with the real server's backlog of 5 and mode 0600.
fn listen_unix(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    let addr = UnixAddr::new(path).map_err(io::Error::from)?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(io::Error::from)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listen(&fd, Backlog::new(LISTEN_BACKLOG).map_err(io::Error::from)?).map_err(io::Error::from)?;
    Ok(UnixListener::from(fd))
}

impl DataServiceDouble {
    /// Listens on `socket_path` (IPC) and on 127.0.0.1 (HTTP API).
    pub fn start(socket_path: &Path) -> io::Result<Self> {
        Self::start_with_http(socket_path, "127.0.0.1:0")
    }

    /// Same, with the HTTP API on `http_addr`.
    pub fn start_with_http(socket_path: &Path, http_addr: &str) -> io::Result<Self> {
        let store = Arc::new(Mutex::new(Store::new()));
        let http_store = Arc::clone(&store);
        let http = HttpServer::tcp(
            http_addr,
            Arc::new(move |request: &HttpRequest| {
                let (status, body) = lock(&http_store).handle_http(request);
                Reply::Full {
                    status,
                    body: dumps(&body).into_bytes(),
                }
            }),
        )?;
        let mut double = DataServiceDouble {
            socket_path: socket_path.to_path_buf(),
            http,
            store,
            stop: Arc::new(AtomicBool::new(false)),
            ipc: None,
        };
        double.listen()?;
        Ok(double)
    }

    fn listen(&mut self) -> io::Result<()> {
        let listener = listen_unix(&self.socket_path)?;
        let store = Arc::clone(&self.store);
        let stop = Arc::clone(&self.stop);
        stop.store(false, Ordering::SeqCst);
        // Named, so a benchmark can tell its CPU from the other peers'.
        self.ipc = Some(
            std::thread::Builder::new()
                .name(IPC_THREAD_NAME.into())
                .spawn(move || serve_ipc(listener, &store, &stop))?,
        );
        Ok(())
    }

    /// The HTTP API's base URL, for `--dataservice-url`.
    pub fn http_url(&self) -> String {
        self.http.url("")
    }

    /// The IPC socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The store, to inspect or to register points directly.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Registers `key` with `data_type` (an operator's set-up).
    pub fn register(&self, key: &str, data_type: &str) -> Result<String, String> {
        let spec = json!({"key": key, "data_type": data_type});
        let spec = spec.as_object().cloned().unwrap_or_default();
        self.store().register(&spec, false)
    }

    /// Registers `key` at an explicit `address` (outside the 1,000-point
    /// ranges, as large installations do).
    pub fn register_at(&self, key: &str, data_type: &str, address: u32) -> Result<String, String> {
        let spec = json!({"key": key, "data_type": data_type, "address": address});
        let spec = spec.as_object().cloned().unwrap_or_default();
        self.store().register(&spec, false)
    }

    /// Every registered key's value.
    pub fn values(&self) -> BTreeMap<String, Value> {
        self.store().values()
    }

    /// IPC request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.store().request_lines().to_vec()
    }

    /// HTTP API requests received so far (`METHOD PATH BODY`).
    pub fn api_requests(&self) -> Vec<String> {
        self.store().api_request_lines().to_vec()
    }

    /// Changes how the IPC side behaves.
    pub fn set_behaviour(&self, behaviour: SinkBehaviour) {
        self.store().behaviour = behaviour;
    }

    /// Stops the IPC listener and removes the socket (the service is down).
    pub fn stop_ipc(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if the socket file is gone already the
        // thread cannot be woken and is left behind rather than waited for.
        let woken = UnixStream::connect(&self.socket_path).is_ok();
        if let Some(thread) = self.ipc.take()
            && woken
        {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }

    /// Listens again after [`DataServiceDouble::stop_ipc`], keeping the store
    /// (a socket that reappears, not a restart).
    pub fn resume_ipc(&mut self) -> io::Result<()> {
        if self.ipc.is_some() {
            return Ok(());
        }
        self.listen()
    }

    /// A restart: every registration and id is gone, ids change.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop_ipc();
        {
            let mut store = self.store();
            store.restart();
            store.rng = seed();
        }
        self.listen()
    }
}

impl Drop for DataServiceDouble {
    fn drop(&mut self) {
        self.stop_ipc();
    }
}

/// The name of the thread that answers the IPC socket.
pub const IPC_THREAD_NAME: &str = "ds-ipc";

fn serve_ipc(listener: UnixListener, store: &Mutex<Store>, stop: &AtomicBool) {
    let mut frozen: Vec<UnixStream> = Vec::new();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut conn) = conn else { continue };
        let behaviour = lock(store).behaviour;
        match behaviour {
            SinkBehaviour::Frozen => {
                frozen.push(conn);
                continue;
            }
            SinkBehaviour::CloseEarly => continue,
            _ => {}
        }
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        // One line per connection; the server never reads a second one.
        let mut reader = BufReader::new(&conn).take(256 << 20);
        if reader.read_line(&mut line).is_err() || line.is_empty() {
            continue;
        }
        let answer = match behaviour {
            SinkBehaviour::Garbage => "<html>502 Bad Gateway</html>\n".to_string(),
            SinkBehaviour::HugeLine => {
                format!("{{\"ok\": true, \"pad\": \"{}\"}}\n", "x".repeat(1 << 20))
            }
            _ => {
                if let SinkBehaviour::SlowMillis(ms) = behaviour {
                    std::thread::sleep(Duration::from_millis(ms));
                }
                let mut store = lock(store);
                let reply = store.handle_ipc(line.trim_end_matches(['\n', '\r']));
                store.answered += 1;
                format!("{}\n", dumps(&reply))
            }
        };
        let _ = conn.write_all(answer.as_bytes());
    }
}
