//! The RPC server: JSON-RPC over HTTP and WebSocket on one port, batches, CORS, and
//! plain HTTP routes beside it (`GET /metrics`, `GET /health`).

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Method, Response, StatusCode, header};
use jsonrpsee::{
    RpcModule,
    core::BoxError,
    server::{
        BatchRequestConfig, HttpBody, HttpRequest, HttpResponse, Server, ServerConfig, ServerHandle,
    },
};
use tower::{Layer, Service};
use tower_http::cors::{Any, CorsLayer};

use crate::eth::{EthApiServer, EthRpc, NetApiServer, Web3ApiServer};

/// Largest accepted HTTP request body (larger ones get 413).
pub const MAX_REQUEST_BYTES: u32 = 8 * 1024 * 1024;
/// Largest response.
pub const MAX_RESPONSE_BYTES: u32 = 128 * 1024 * 1024;
/// Most calls in one batch.
pub const MAX_BATCH: u32 = 10_000;

/// A plain HTTP page served beside JSON-RPC: content type and a body renderer.
pub type Page = (&'static str, Arc<dyn Fn() -> String + Send + Sync>);

/// Every JSON-RPC method Noesis serves, as one module (also usable in-process).
pub fn rpc_module(eth: EthRpc) -> Result<RpcModule<()>, BoxError> {
    let mut module = RpcModule::new(());
    module.merge(EthApiServer::into_rpc(eth.clone()))?;
    module.merge(NetApiServer::into_rpc(eth.clone()))?;
    module.merge(crate::noesis::NoesisApiServer::into_rpc(eth.clone()))?;
    module.merge(Web3ApiServer::into_rpc(eth))?;
    Ok(module)
}

/// Starts the server on `addr` with the Ethereum namespaces and `pages` (GET routes).
pub async fn start(
    addr: SocketAddr,
    eth: EthRpc,
    pages: Vec<(&'static str, Page)>,
) -> Result<(ServerHandle, SocketAddr), BoxError> {
    let module = rpc_module(eth)?;
    let middleware = tower::ServiceBuilder::new()
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_headers(Any)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS]),
        )
        .layer(PagesLayer {
            pages: Arc::new(pages),
        });
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(MAX_RESPONSE_BYTES)
        .max_connections(1024)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .set_id_provider(HexIdProvider)
        .build();
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build(addr)
        .await?;
    let local = server.local_addr()?;
    Ok((server.start(module), local))
}

/// Serves the GET pages and passes everything else to JSON-RPC.
#[derive(Clone)]
struct PagesLayer {
    pages: Arc<Vec<(&'static str, Page)>>,
}

impl<S> Layer<S> for PagesLayer {
    type Service = Pages<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Pages {
            inner,
            pages: self.pages.clone(),
        }
    }
}

/// The service made by [`PagesLayer`].
#[derive(Clone)]
pub struct Pages<S> {
    inner: S,
    pages: Arc<Vec<(&'static str, Page)>>,
}

impl<S, B> Service<HttpRequest<B>> for Pages<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        let is_websocket = req.headers().contains_key(header::UPGRADE);
        if req.method() == Method::GET && !is_websocket {
            let path = req.uri().path();
            if let Some((_, (content_type, render))) = self.pages.iter().find(|(p, _)| *p == path) {
                let body = render();
                let response = Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, *content_type)
                    .body(HttpBody::from(body))
                    .map_err(|e| Box::new(e) as BoxError);
                return Box::pin(async move { response });
            }
        }
        let future = self.inner.call(req);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

/// Subscription ids as geth makes them: "0x" and 32 hex digits.
#[derive(Debug)]
struct HexIdProvider;

impl jsonrpsee::core::traits::IdProvider for HexIdProvider {
    fn next_id(&self) -> jsonrpsee::types::SubscriptionId<'static> {
        let bytes: [u8; 16] = rand::random();
        jsonrpsee::types::SubscriptionId::Str(
            format!("0x{}", alloy_primitives::hex::encode(bytes)).into(),
        )
    }
}
