//! A loopback HTTP server for tests that fetch URLs (ADD of a URL, RUN
//! steps reaching the host): fixed files by path, 404 otherwise, a fixed
//! `Last-Modified`. Runs on its own thread and tokio runtime; stops when
//! dropped.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// The `Last-Modified` every file is served with.
pub const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
/// [`LAST_MODIFIED`] in seconds since the epoch.
pub const LAST_MODIFIED_EPOCH: u64 = 1_445_412_480;

pub struct FileServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    requests: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    /// Serves `files` (path, content).
    pub fn start(files: Vec<(&'static str, Vec<u8>)>) -> FileServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let files = Arc::new(files);
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("file server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let files = files.clone();
                            let counter = counter.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                    counter.fetch_add(1, Ordering::SeqCst);
                                    let found = files
                                        .iter()
                                        .find(|(p, _)| *p == req.uri().path())
                                        .map(|(_, d)| d.clone());
                                    async move {
                                        let resp = match found {
                                            Some(d) => hyper::Response::builder()
                                                .header("Last-Modified", LAST_MODIFIED)
                                                .body(Full::new(bytes::Bytes::from(d))),
                                            None => hyper::Response::builder()
                                                .status(404)
                                                .body(Full::new(bytes::Bytes::from_static(b"not found"))),
                                        };
                                        Ok::<_, std::convert::Infallible>(resp.expect("a valid response"))
                                    }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        FileServer {
            addr,
            requests,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lower-case hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
