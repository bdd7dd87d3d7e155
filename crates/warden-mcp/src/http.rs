//! MCP over Streamable HTTP: a tower service for a web server to mount
//! (`warden serve` puts it at `/mcp`, behind its own authentication).

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::{McpServer, McpSession};

impl McpServer {
    /// This server as a Streamable HTTP endpoint (MCP sessions kept in
    /// memory), to mount in a router. It does no authentication of its
    /// own: put it behind yours, and put the authenticated
    /// [`Caller`](crate::Caller) into each request's extensions, so calls
    /// run on their behalf. `allowed_hosts` are the `Host` values it
    /// answers (a guard against DNS rebinding; empty: any), `max_body` the
    /// largest request body in bytes; `stop` ends every session.
    ///
    /// ```no_run
    /// # fn demo(server: warden_mcp::McpServer) {
    /// let stop = tokio_util::sync::CancellationToken::new();
    /// let service = server.http_service(vec!["localhost".into()], 1 << 20, stop);
    /// // axum: Router::new().nest_service("/mcp", service)
    /// # let _ = service; }
    /// ```
    pub fn http_service(
        &self,
        allowed_hosts: Vec<String>,
        max_body: usize,
        stop: CancellationToken,
    ) -> StreamableHttpService<McpSession, LocalSessionManager> {
        let mut config = StreamableHttpServerConfig::default();
        config.allowed_hosts = allowed_hosts;
        config.max_request_body_bytes = max_body;
        config.cancellation_token = stop;
        config.sse_keep_alive = Some(Duration::from_secs(15));
        let server = self.clone();
        StreamableHttpService::new(
            move || Ok(server.session()),
            Arc::new(LocalSessionManager::default()),
            config,
        )
    }
}
