//! The network under validate's S3 requests: proxy choice, TLS trust, connections and HTTP
//! exchanges, each as restic's Go transport does them.

mod client_cert;
pub(crate) mod connect;
pub(crate) mod gourl;
pub(crate) mod http;
mod kx;
mod probe;
pub mod proxy;
mod resolve;
mod socks;
pub mod tls;
pub(crate) mod words;
