//! Layer 5, the poem and poem-openapi glue: the [`Security`](crate::Security)
//! middleware and its builder, the guards, the checked routers, the OpenAPI
//! documentation, client IPs behind proxies, and the HTTP form of refusals.

pub(crate) mod check_args;
pub(crate) mod client_ip;
pub(crate) mod failure;
pub(crate) mod guard;
pub mod matrix;
pub(crate) mod middleware;
pub mod openapi;
pub(crate) mod openapi_flows;
pub(crate) mod response;
pub mod route;
pub(crate) mod security;
pub(crate) mod spec;
#[cfg(feature = "swagger-ui")]
pub(crate) mod swagger;
pub(crate) mod types;
