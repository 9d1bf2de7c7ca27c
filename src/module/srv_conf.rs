//! The server configuration of the module's http and stream parts, read
//! by the server discovery.

use crate::ocsp::responder::ProxyUrl;

/// `ssl_stapling_proxy` as written (or inherited) for one server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    #[default]
    Unset,
    Off,
    Url(ProxyUrl),
}

/// Server configuration of the http part and of the stream part.
#[derive(Default)]
pub struct SrvConf {
    pub proxy: ProxySetting,
}
