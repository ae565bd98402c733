//! A loopback HTTP proxy in front of a test registry that logs every request
//! and injects faults: 500 answers and dropped connections on some requests,
//! or a corrupted byte in every blob download. Test code only: kiln itself
//! has no such feature. Runs on its own thread and tokio runtime; stops when
//! dropped.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = BoxBody<Bytes, std::io::Error>;

/// Which faults to inject. Requests are numbered from 1 in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fail the first request of every kind (method and path, upload
    /// session ids left out), alternately with a 500 and a dropped
    /// connection; later ones pass. Every kind of request meets a fault
    /// once, and a client that retries always gets through.
    pub fail_first: bool,
    /// Answer 500 (without asking the registry) to every n-th request.
    pub error_every: Option<u32>,
    /// Drop the connection on every n-th request that is not answered 500:
    /// blob downloads are cut after part of their body, other requests
    /// before any answer.
    pub drop_every: Option<u32>,
    /// Flip one byte in the body of every successful blob download.
    pub corrupt_blobs: bool,
    /// Answer blob upload PUTs with this status (e.g. 413) instead of
    /// forwarding them.
    pub reject_uploads: Option<u16>,
    /// Play a token-authenticated registry (as Docker Hub, ghcr.io): every
    /// `/v2/` request needs `Authorization: Bearer <token>`, else 401 with a
    /// `Bearer realm="http://PROXY/token"` challenge; `GET /token` issues
    /// tokens for this user name and password (basic auth) only.
    pub bearer: Option<(String, String)>,
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// The status sent back; 0 when the connection was dropped.
    pub status: u16,
    /// Whether the proxy injected a fault into this request.
    pub fault: bool,
}

struct State {
    seen: Mutex<std::collections::HashSet<String>>,
    tokens: Mutex<std::collections::HashSet<String>>,
    upstream: String,
    faults: Faults,
    counter: AtomicU32,
    log: Mutex<Vec<Logged>>,
    client: Client<HttpConnector, Body>,
}

/// The running proxy.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`: use it as the registry's address.
    pub addr: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to the registry at `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (state_tx, state_rx) = std::sync::mpsc::channel();
        let upstream = upstream.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
                let state = Arc::new(State {
                    seen: Mutex::default(),
                    tokens: Mutex::default(),
                    upstream,
                    faults,
                    counter: AtomicU32::new(0),
                    log: Mutex::new(Vec::new()),
                    client,
                });
                state_tx.send(state.clone()).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut rx = rx;
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let state = state.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| handle(req, state.clone()));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        let state = state_rx.recv().expect("proxy started");
        FaultProxy {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.log.lock().unwrap().clone()
    }

    /// Requests with this method whose path contains `fragment`.
    pub fn count(&self, method: &str, fragment: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .count()
    }

    /// How many faults were injected.
    pub fn faults_injected(&self) -> usize {
        self.requests().iter().filter(|r| r.fault).count()
    }

    /// `PROXY_ADDR/REPO:TAG`
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn is_blob_get(method: &hyper::Method, path: &str) -> bool {
    method == hyper::Method::GET && path.contains("/blobs/sha256:")
}

fn full(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(
            Full::new(Bytes::from_static(text.as_bytes()))
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, std::io::Error> {
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let record = |status: u16, fault: bool| {
        state.log.lock().unwrap().push(Logged {
            method: method.to_string(),
            path: path.clone(),
            status,
            fault,
        });
    };
    let faults = &state.faults;
    if let Some((user, password)) = &faults.bearer
        && let Some(response) = token_auth(&req, &path, user, password, &state)
    {
        record(response.status().as_u16(), false);
        return Ok(response);
    }
    let mut first_fault = None;
    if faults.fail_first {
        // The kind of request: method and path, without the query and the
        // upload session's id.
        let mut kind = path.split('?').next().unwrap_or("").to_string();
        if let Some(i) = kind.find("/blobs/uploads/") {
            kind.truncate(i + "/blobs/uploads/".len());
        }
        let key = format!("{method} {kind}");
        let mut seen = state.seen.lock().unwrap();
        if seen.insert(key) {
            first_fault = Some(seen.len() % 2 == 1);
        }
    }
    if first_fault == Some(true) || faults.error_every.is_some_and(|k| n.is_multiple_of(k)) {
        record(500, true);
        return Ok(full(StatusCode::INTERNAL_SERVER_ERROR, "injected fault\n"));
    }
    if let Some(code) = faults.reject_uploads
        && method == hyper::Method::PUT
        && path.contains("/blobs/uploads/")
    {
        record(code, true);
        let mut response = full(StatusCode::OK, "upload rejected by the test proxy\n");
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        return Ok(response);
    }
    let drop_this =
        first_fault == Some(false) || faults.drop_every.is_some_and(|k| n.is_multiple_of(k));
    if drop_this && !is_blob_get(&method, &path) {
        record(0, true);
        return Err(std::io::Error::other("injected dropped connection"));
    }

    // Forward to the registry, keeping the Host header so the Location
    // headers it sends point back at the proxy.
    let (parts, body) = req.into_parts();
    let mut upstream_req = Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{}{}", state.upstream, path));
    for (k, v) in parts.headers.iter() {
        upstream_req = upstream_req.header(k, v);
    }
    let upstream_req = upstream_req
        .body(body.map_err(std::io::Error::other).boxed())
        .unwrap();
    let response = match state.client.request(upstream_req).await {
        Ok(r) => r,
        Err(e) => {
            record(502, false);
            return Ok(Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(
                    Full::new(Bytes::from(format!("proxy: {e}\n")))
                        .map_err(|e: Infallible| match e {})
                        .boxed(),
                )
                .unwrap());
        }
    };
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body.map_err(std::io::Error::other);
    let blob_body = is_blob_get(&method, &path) && status == StatusCode::OK;
    let body: Body = if blob_body && drop_this {
        record(0, true);
        // Send a little of the body, then fail: the connection is cut
        // mid-transfer.
        CutBody {
            inner: body.boxed(),
            sent: 0,
            limit: 1024,
        }
        .boxed()
    } else if blob_body && faults.corrupt_blobs {
        record(status.as_u16(), true);
        let mut first = true;
        body.map_frame(move |frame| match frame.into_data() {
            Ok(data) if first && !data.is_empty() => {
                first = false;
                let mut v = data.to_vec();
                v[0] ^= 0xff;
                Frame::data(Bytes::from(v))
            }
            Ok(data) => Frame::data(data),
            Err(frame) => frame,
        })
        .boxed()
    } else {
        record(status.as_u16(), false);
        body.boxed()
    };
    Ok(Response::from_parts(parts, body))
}

/// The token-server side of [`Faults::bearer`]: answers `/token`, and
/// challenges `/v2/` requests without a token it issued. `None` lets the
/// request through.
fn token_auth(
    req: &Request<Incoming>,
    path: &str,
    user: &str,
    password: &str,
    state: &State,
) -> Option<Response<Body>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let host = header("host");
    let authorization = header("authorization");
    if path.starts_with("/token") {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        if authorization != expected {
            let mut r = full(
                StatusCode::UNAUTHORIZED,
                "{\"details\":\"incorrect username or password\"}\n",
            );
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return Some(r);
        }
        let mut tokens = state.tokens.lock().unwrap();
        let token = format!("kiln-test-token-{}", tokens.len() + 1);
        tokens.insert(token.clone());
        let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
        return Some(
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(
                    Full::new(Bytes::from(body))
                        .map_err(|e: Infallible| match e {})
                        .boxed(),
                )
                .unwrap(),
        );
    }
    let token = authorization.strip_prefix("Bearer ").unwrap_or("");
    if state.tokens.lock().unwrap().contains(token) {
        return None;
    }
    let mut r = full(
        StatusCode::UNAUTHORIZED,
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}\n",
    );
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(
        "www-authenticate",
        format!("Bearer realm=\"http://{host}/token\",service=\"kiln-test\"")
            .parse()
            .unwrap(),
    );
    Some(r)
}

/// A body cut after `limit` bytes: it then fails, which makes hyper abort
/// the connection mid-transfer.
struct CutBody {
    inner: Body,
    sent: usize,
    limit: usize,
}

impl hyper::body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.sent >= self.limit {
            return std::task::Poll::Ready(Some(Err(std::io::Error::other("injected cut"))));
        }
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let room = self.limit - self.sent;
            if data.len() > room {
                let part = data.slice(..room);
                self.sent = self.limit;
                return std::task::Poll::Ready(Some(Ok(Frame::data(part))));
            }
            self.sent += data.len();
        }
        polled
    }
}
