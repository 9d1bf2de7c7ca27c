//! A TCP connection to a responder on nginx's event loop: nginx's peer
//! connection API, with async connect/send/recv for the module's task.
//! Every operation is bounded by one deadline for the whole fetch, and the
//! connection's timers are cancelable so they never hold up a worker's
//! graceful exit.

use std::future::poll_fn;
use std::ptr::{self, NonNull};
use std::task::{Poll, Waker};

use crate::base::log::Log;
use nginx_sys::{
    ngx_close_connection, ngx_connection_t, ngx_event_connect_peer, ngx_event_get_peer, ngx_event_t,
    ngx_handle_read_event, ngx_handle_write_event, ngx_msec_t, ngx_peer_connection_t, ngx_str_t, socklen_t,
    NGX_AGAIN,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    /// The peer (its name) has an address longer than a socklen_t.
    #[error("connect() to {0}: bad address")]
    BadAddress(String),
    /// nginx could not make the connection (it logged why).
    #[error("connect() to {0} failed")]
    Connect(String),
    /// The socket's error after connecting (an errno).
    #[error("connect() to {peer} failed ({code}: {})", os_text(*.code))]
    Refused { peer: String, code: i32 },
    #[error("timed out")]
    TimedOut,
    /// Which step failed: nginx logged why.
    #[error("connection error ({0})")]
    Io(&'static str),
}

/// The system's text for `code`, without Rust's "(os error N)".
fn os_text(code: i32) -> String {
    let text = std::io::Error::from_raw_os_error(code).to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_string(),
        None => text,
    }
}

/// A deadline on nginx's millisecond clock.
#[derive(Clone, Copy)]
pub struct Deadline(ngx_msec_t);

impl Deadline {
    pub fn after_ms(ms: ngx_msec_t) -> Deadline {
        // SAFETY: nginx's cached clock, read on the worker's only thread.
        Deadline(unsafe { nginx_sys::ngx_current_msec }.wrapping_add(ms))
    }

    /// Milliseconds left, or None when passed.
    pub fn remaining(self) -> Option<ngx_msec_t> {
        // SAFETY: as above.
        let now = unsafe { nginx_sys::ngx_current_msec };
        let left = self.0.wrapping_sub(now) as i64;
        (left > 0).then_some(left as ngx_msec_t)
    }
}

/// What the event handlers reach through `c->data`.
struct IoState {
    waker: Option<Waker>,
    name: ngx_str_t,
    name_buf: Vec<u8>,
}

pub struct Connection {
    c: NonNull<ngx_connection_t>,
    state: Box<IoState>,
}

unsafe extern "C" fn on_event(ev: *mut ngx_event_t) {
    crate::base::guard::guard((), || {
        // SAFETY: nginx calls this with one of a connection's events; the
        // connection's data is our IoState until `Connection::drop` clears it.
        let waker = unsafe {
            let c = (*ev).data as *mut ngx_connection_t;
            if c.is_null() || (*c).data.is_null() {
                return;
            }
            (*((*c).data as *mut IoState)).waker.take()
        };
        // Wake last, holding no borrow: the task may run (and drop the
        // connection) right here.
        if let Some(w) = waker {
            w.wake();
        }
    })
}

impl Connection {
    /// Connects to the sockaddr whose bytes are `addr`. The name is for
    /// nginx's log lines.
    ///
    /// # Safety
    /// `log` must be valid for the connection's life.
    pub async unsafe fn connect(
        addr: &[u8],
        name: &str,
        log: Log,
        deadline: Deadline,
    ) -> Result<Connection, NetError> {
        let mut state = Box::new(IoState {
            waker: None,
            name: ngx_str_t::empty(),
            name_buf: name.as_bytes().to_vec(),
        });
        state.name = ngx_str_t {
            len: state.name_buf.len(),
            data: state.name_buf.as_mut_ptr(),
        };
        let Ok(len) = socklen_t::try_from(addr.len()) else {
            return Err(NetError::BadAddress(name.to_string()));
        };
        let mut sa = addr.to_vec();

        // SAFETY: all zeroes is the unset state of this plain C struct
        // (nginx's own code starts from ngx_memzero).
        let mut pc: ngx_peer_connection_t = unsafe { std::mem::zeroed() };
        pc.sockaddr = sa.as_mut_ptr().cast();
        pc.socklen = len;
        pc.name = &mut state.name;
        pc.get = Some(ngx_event_get_peer);
        pc.log = log.as_ptr();
        pc.set_log_error(1); // NGX_ERROR_ERR

        // SAFETY: `pc` is complete; its sockaddr (`sa`) lives until the
        // connection is writable, its name (`state`) as long as the
        // connection.
        let rc = unsafe { ngx_event_connect_peer(&mut pc) };
        let Some(c) = NonNull::new(pc.connection) else {
            return Err(NetError::Connect(name.to_string()));
        };
        let mut conn = Connection { c, state };
        let cp = c.as_ptr();
        // SAFETY: a connection nginx just made for us, with both events;
        // its data points at our IoState, boxed as long as `conn` lives.
        unsafe {
            (*cp).data = (&mut *conn.state as *mut IoState).cast();
            (*cp).log = log.as_ptr();
            (*(*cp).read).handler = Some(on_event);
            (*(*cp).write).handler = Some(on_event);
            (*(*cp).read).log = log.as_ptr();
            (*(*cp).write).log = log.as_ptr();
            (*(*cp).read).set_cancelable(1);
            (*(*cp).write).set_cancelable(1);
        }

        if rc != 0 && rc != NGX_AGAIN as isize {
            return Err(NetError::Connect(name.to_string()));
        }
        // nginx keeps pointing at pc.sockaddr (our `sa`) while connecting.
        let r = conn.wait_writable(deadline).await;
        drop(sa);
        r?;
        let mut err: libc::c_int = 0;
        let mut elen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the connection's own socket; the option is written into
        // the local `err` of `elen` bytes.
        let got = unsafe {
            libc::getsockopt(
                (*cp).fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut elen,
            )
        };
        if got == -1 || err != 0 {
            let code = if err != 0 { err } else { libc::EIO };
            return Err(NetError::Refused {
                peer: name.to_string(),
                code,
            });
        }
        Ok(conn)
    }

    fn event(&self, write: bool) -> *mut ngx_event_t {
        // SAFETY: a live connection has both events.
        unsafe {
            let c = self.c.as_ptr();
            if write {
                (*c).write
            } else {
                (*c).read
            }
        }
    }

    /// Arms the event's timer for the time left and stores the waker.
    fn park(&mut self, ev: *mut ngx_event_t, deadline: Deadline, waker: &Waker) -> Result<(), NetError> {
        let left = deadline.remaining().ok_or(NetError::TimedOut)?;
        // SAFETY: ev is one of this connection's events.
        unsafe {
            if (*ev).timer_set() == 0 {
                nginx_sys::ngx_add_timer(ev, left);
            }
        }
        self.state.waker = Some(waker.clone());
        Ok(())
    }

    fn settle(&mut self, ev: *mut ngx_event_t) {
        // SAFETY: as in park.
        unsafe {
            if (*ev).timer_set() != 0 {
                nginx_sys::ngx_del_timer(ev);
            }
        }
    }

    /// Runs `step` until it is done, parking on the read or write event in
    /// between, within `deadline`.
    async fn io<T>(
        &mut self,
        write: bool,
        deadline: Deadline,
        mut step: impl FnMut(*mut ngx_connection_t, *mut ngx_event_t) -> Step<T>,
    ) -> Result<T, NetError> {
        let ev = self.event(write);
        let c = self.c.as_ptr();
        let r = poll_fn(|cx| {
            // SAFETY: ev is live while self is.
            if unsafe { (*ev).timedout() } != 0 {
                return Poll::Ready(Err(NetError::TimedOut));
            }
            match step(c, ev) {
                Step::Done(r) => return Poll::Ready(r),
                Step::Wait => {}
                Step::Again => {
                    // SAFETY: ev is this live connection's event.
                    let failed = unsafe {
                        if write {
                            ngx_handle_write_event(ev, 0)
                        } else {
                            ngx_handle_read_event(ev, 0)
                        }
                    } != 0;
                    if failed {
                        return Poll::Ready(Err(NetError::Io(if write { "send" } else { "recv" })));
                    }
                }
            }
            match self.park(ev, deadline, cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await;
        self.settle(ev);
        r
    }

    async fn wait_writable(&mut self, deadline: Deadline) -> Result<(), NetError> {
        self.io(true, deadline, |_, ev| {
            // SAFETY: ev is live while the connection is.
            if unsafe { (*ev).ready() } != 0 {
                Step::Done(Ok(()))
            } else {
                Step::Wait
            }
        })
        .await
    }

    pub async fn send_all(&mut self, mut data: &[u8], deadline: Deadline) -> Result<(), NetError> {
        self.io(true, deadline, |c, _| loop {
            if data.is_empty() {
                return Step::Done(Ok(()));
            }
            // SAFETY: c is live while the connection is.
            let Some(send) = (unsafe { (*c).send }) else {
                return Step::Done(Err(NetError::Io("no send")));
            };
            // SAFETY: nginx's send handler, with a buffer of data.len() bytes.
            let n = unsafe { send(c, data.as_ptr().cast_mut(), data.len()) };
            if n > 0 {
                data = data.get(n as usize..).unwrap_or_default();
            } else if n == NGX_AGAIN as isize {
                return Step::Again;
            } else {
                return Step::Done(Err(NetError::Io("send() failed")));
            }
        })
        .await
    }

    /// Reads what is there; Ok(0) at the end of the stream.
    pub async fn recv(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, NetError> {
        self.io(false, deadline, |c, _| {
            // SAFETY: c is live while the connection is.
            let Some(recv) = (unsafe { (*c).recv }) else {
                return Step::Done(Err(NetError::Io("no recv")));
            };
            // SAFETY: nginx's recv handler, with a buffer of buf.len() bytes.
            let n = unsafe { recv(c, buf.as_mut_ptr(), buf.len()) };
            if n >= 0 {
                Step::Done(Ok(n as usize))
            } else if n == NGX_AGAIN as isize {
                Step::Again
            } else {
                Step::Done(Err(NetError::Io("recv() failed")))
            }
        })
        .await
    }
}

/// What one attempt at I/O came to.
enum Step<T> {
    Done(Result<T, NetError>),
    /// Not yet: wait for the event, which is already armed.
    Wait,
    /// Would block: arm the event, then wait.
    Again,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: the connection is ours; closing removes its events and
        // timers. Clear data first so a stray handler finds nothing.
        unsafe {
            let c = self.c.as_ptr();
            (*c).data = ptr::null_mut();
            ngx_close_connection(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NetError;

    #[test]
    fn errors_read_as_nginx_logs_them() {
        let refused = NetError::Refused {
            peer: "127.0.0.1:8081".into(),
            code: libc::ECONNREFUSED,
        };
        assert_eq!(
            refused.to_string(),
            "connect() to 127.0.0.1:8081 failed (111: Connection refused)"
        );
        assert_eq!(NetError::Io("send").to_string(), "connection error (send)");
        assert_eq!(
            NetError::Connect("ocsp.example:80".into()).to_string(),
            "connect() to ocsp.example:80 failed"
        );
    }
}
