//! The HTTP endpoint of `--metrics`: tiny_http on its own thread serves the latest page at
//! `/metrics`; the run replaces the page, never waits for a scrape. Bound before any target
//! starts, so a port in use ends the run with one line first.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

/// What `/metrics` answers, replaced by the run.
#[derive(Clone, Debug, Default)]
pub struct Page(Arc<Mutex<String>>);

impl Page {
    pub fn set(&self, text: String) {
        if let Ok(mut p) = self.0.lock() {
            *p = text;
        }
    }

    pub fn get(&self) -> String {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The Prometheus text format ([`super::prometheus_text`]).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The listening endpoint; dropping it stops the thread.
pub struct Server {
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub page: Page,
    pub addr: SocketAddr,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metrics server on {}", self.addr)
    }
}

impl Server {
    /// Listens on `addr` and serves from a thread of its own.
    pub fn start(addr: SocketAddr) -> anyhow::Result<Self> {
        let http = tiny_http::Server::http(addr).map_err(|e| {
            anyhow::anyhow!(
                "--metrics {addr}: cannot listen there: {e}; give another address or port (e.g. --metrics 127.0.0.1:9465)"
            )
        })?;
        let addr = http.server_addr().to_ip().unwrap_or(addr);
        let http = Arc::new(http);
        let page = Page::default();
        let thread = {
            let (http, page) = (Arc::clone(&http), page.clone());
            std::thread::Builder::new()
                .name("tracer-metrics".into())
                .spawn(move || serve(&http, &page))
                .map_err(|e| anyhow::anyhow!("start the metrics thread: {e}"))?
        };
        page.set("# no report yet\n".into());
        Ok(Self {
            http,
            thread: Some(thread),
            page,
            addr,
        })
    }
}

/// Answers requests until the server is unblocked.
fn serve(http: &tiny_http::Server, page: &Page) {
    for req in http.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or_default().to_string();
        let response = if path == "/metrics" {
            let header = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
                .map_or_else(|()| Vec::new(), |h| vec![h]);
            let mut r = tiny_http::Response::from_string(page.get());
            for h in header {
                r.add_header(h);
            }
            r
        } else {
            tiny_http::Response::from_string("tracer: the metrics are at /metrics\n")
                .with_status_code(404)
        };
        // A scraper that went away is its own business.
        let _ = req.respond(response);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
