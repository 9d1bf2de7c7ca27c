//! The store `ssl_stapling_store` names, made in the master for the
//! workers: a directory prepared for them, or a Redis client.

use nginx_sys::{ngx_cycle_t, NGX_LOG_ERR};
use ngx::http::HttpModuleConfExt;
use std::ptr;

use super::discover;
use super::http::{ngx_ssl_stapling_http_module, ngx_ssl_stapling_stream_module, BlockConf, StoreSetting};
use crate::base::log::{log, log_notice, log_warn, Log};
use crate::state::store::{self, kv, StapleStore};
use std::sync::Arc;
use std::time::Duration;

/// Why the http and stream blocks' `ssl_stapling_store` make no store.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreConfError {
    #[error(
        "\"ssl_stapling_store\" names another Redis store in http than in stream: \
         there is one store, name the same (with the same parameters) or only one"
    )]
    TwoRedis,
    #[error(
        "\"ssl_stapling_store\" names Redis in one of http and stream and a \
         directory in the other: there is one store, name the same or only one"
    )]
    RedisAndDir,
    #[error(
        "\"ssl_stapling_store\" is \"{http}\"{http_shared} in http and \"{stream}\"{stream_shared} in stream: \
         there is one store, name the same directory (and \"shared\" or not) or only one"
    )]
    TwoDirs {
        http: String,
        http_shared: &'static str,
        stream: String,
        stream_shared: &'static str,
    },
    #[error("ssl_stapling_store: {0}")]
    Redis(#[from] kv::SetupError),
}

/// How the error above shows a directory's "shared".
fn shared_word(shared: bool) -> &'static str {
    if shared {
        " shared"
    } else {
        ""
    }
}

/// The store `ssl_stapling_store` names in the http and stream blocks
/// (the same one, or only one of them), prepared for the workers: created
/// if missing, checked writable by the worker user. A store the workers
/// cannot write is one error now, and staples are then only read from it.
/// Redis calls are bounded by `timeout`.
///
/// # Safety
/// `cycle`'s configuration has been parsed.
pub(super) unsafe fn store_of(
    cycle: *mut ngx_cycle_t,
    timeout: Duration,
) -> Result<Option<Arc<dyn StapleStore>>, StoreConfError> {
    // SAFETY: the contract above: the http block's main configuration of
    // this module is a BlockConf (ngx's accessor finds it by the module's
    // ctx_index, which nginx has set by now).
    let http = unsafe {
        (*cycle)
            .http_main_conf_unchecked::<BlockConf>(&*ptr::addr_of!(ngx_ssl_stapling_http_module))
            .map_or(StoreSetting::Unset, |c| c.as_ref().store.clone())
    };
    // The stream block by name (stream may be a module nginx loads too):
    // its main_conf array holds this module's BlockConf at its ctx_index.
    // SAFETY: as above.
    let stream = unsafe {
        let index = ngx_ssl_stapling_stream_module.ctx_index;
        discover::block_ctx(cycle, c"ngx_stream_module")
            .map(|ctx| (*ctx).main_conf)
            .filter(|main| !main.is_null())
            .and_then(|main| (*main.add(index) as *const BlockConf).as_ref())
            .map_or(StoreSetting::Unset, |c| c.store.clone())
    };
    let (dir, shared) = match (http, stream) {
        (StoreSetting::Redis(a), StoreSetting::Redis(b)) if a != b => {
            return Err(StoreConfError::TwoRedis);
        }
        (StoreSetting::Redis(_), StoreSetting::Dir(..)) | (StoreSetting::Dir(..), StoreSetting::Redis(_)) => {
            return Err(StoreConfError::RedisAndDir);
        }
        (StoreSetting::Redis(r), _) | (_, StoreSetting::Redis(r)) => {
            return Ok(Some(Arc::new(kv::RedisStore::new(&r, timeout)?)));
        }
        (StoreSetting::Dir(http, http_shared), StoreSetting::Dir(stream, stream_shared))
            if http != stream || http_shared != stream_shared =>
        {
            return Err(StoreConfError::TwoDirs {
                http,
                http_shared: shared_word(http_shared),
                stream,
                stream_shared: shared_word(stream_shared),
            });
        }
        (StoreSetting::Dir(a, shared), _) | (_, StoreSetting::Dir(a, shared)) => (a, shared),
        _ => return Ok(None),
    };
    let path = std::path::PathBuf::from(&dir);
    // SAFETY: nginx's globals and the cycle, read in the single-threaded
    // master.
    let (test_config, log_) = unsafe { (nginx_sys::ngx_test_config, Log::from_ptr((*cycle).log)) };
    let writable = if test_config != 0 {
        true
    } else {
        // SAFETY: the contract above.
        match store::prepare(&path, unsafe { worker_identity(cycle) }) {
            Ok(()) => true,
            Err(e) => {
                if let Some(log_) = log_ {
                    log!(
                        NGX_LOG_ERR,
                        log_,
                        "ssl_stapling_store \"{dir}\": {e}; staples are not written to it, \
                         so they are not kept across restarts"
                    );
                }
                false
            }
        }
    };
    let mut dir_store = store::Store::new(path, writable, shared);
    if test_config == 0 && writable {
        dir_store.seal = seal_key(&dir_store, log_);
    }
    Ok(Some(Arc::new(dir_store)))
}

/// The key that seals the store's staples (`.seal-key` in it, made at the
/// first start), or why there is none: a `warn`, and every stored staple
/// is then checked in full, signature and all, at each start.
fn seal_key(dir: &store::Store, log_: Option<Log>) -> Option<store::seal::SealKey> {
    let path = store::seal::key_path(&dir.dir);
    match store::seal::load_or_make(&dir.dir) {
        Ok((key, made)) => {
            if let (true, Some(log_)) = (made, log_) {
                log_notice!(
                    log_,
                    "made the key that seals the staples of the store \"{}\": \"{}\"",
                    dir.shown,
                    path.display()
                );
            }
            Some(key)
        }
        Err(e) => {
            if let Some(log_) = log_ {
                log_warn!(
                    log_,
                    "the store's key \"{}\" is not used: {e}; stored staples are checked in full \
                     (signature and all) at each start; remove it and a new one is made",
                    path.display()
                );
            }
            None
        }
    }
}

/// The user and group the workers will run as, when the master is root.
///
/// # Safety
/// `cycle`'s configuration has been parsed.
unsafe fn worker_identity(cycle: *mut ngx_cycle_t) -> Option<(libc::uid_t, libc::gid_t)> {
    // SAFETY: a plain system call.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: the contract above: the core module's slot holds its
    // ngx_core_conf_t.
    unsafe {
        let ccf =
            *(*cycle).conf_ctx.add(nginx_sys::ngx_core_module.index) as *const nginx_sys::ngx_core_conf_t;
        if ccf.is_null() || (*ccf).user == libc::uid_t::MAX {
            return None;
        }
        Some(((*ccf).user, (*ccf).group))
    }
}
