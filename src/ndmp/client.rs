//! A small NDMP v4 client (the DMA side): connect, authenticate with MD5, send requests and
//! read their replies, keeping the posts (NOTIFY, LOG) that arrive in between. Used by
//! `xcopy ndmp` and the tests.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::auth;
use super::conn::read_record;
use super::header::{frame, Header, MessageType, HEADER_LEN};
use super::message::{code, AuthData, Error, Request, AUTH_MD5};
use super::xdr::Reader;

/// A post the server sent: its message code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub message: u32,
    pub body: Vec<u8>,
}

pub struct Client {
    stream: TcpStream,
    sequence: u32,
    pub posts: VecDeque<Post>,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Client {
    /// Connects, reads the server's NOTIFY_CONNECTION_STATUS, opens v4 and authenticates.
    pub fn connect(addr: impl ToSocketAddrs, user: &str, password: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut c = Self {
            stream,
            sequence: 1,
            posts: VecDeque::new(),
        };
        let hello = c.next_post()?;
        if hello.message != code::NOTIFY_CONNECTION_STATUS {
            return Err(bad("no NOTIFY_CONNECTION_STATUS"));
        }
        c.expect_ok(&Request::ConnectOpen { version: 4 })?;
        let (_, attr) = c.call(&Request::ConfigGetAuthAttr {
            auth_type: AUTH_MD5,
        })?;
        let r = &mut Reader::new(&attr);
        let (e, _, challenge) =
            (|| Ok::<_, super::xdr::DecodeError>((r.u32()?, r.u32()?, r.fixed(64)?)))()
                .map_err(|e| bad(e.to_string()))?;
        if e != 0 {
            return Err(bad(format!("CONFIG_GET_AUTH_ATTR error {e}")));
        }
        let mut ch = [0u8; 64];
        ch.copy_from_slice(challenge);
        let digest = auth::digest(&ch, password);
        c.expect_ok(&Request::ConnectClientAuth(AuthData::Md5 {
            id: user.into(),
            digest,
        }))?;
        Ok(c)
    }

    fn send(&mut self, request: &Request) -> io::Result<u32> {
        let (message, body) = request.encode();
        let h = Header {
            sequence: self.sequence,
            time_stamp: 0,
            message_type: MessageType::Request,
            message,
            reply_sequence: 0,
            error: 0,
        };
        self.sequence += 1;
        let mut m = Vec::with_capacity(HEADER_LEN + body.len());
        h.encode(&mut m);
        m.extend_from_slice(&body);
        self.stream.write_all(&frame(&m))?;
        Ok(h.sequence)
    }

    /// Reads one message: (header, body).
    fn receive(&mut self) -> io::Result<(Header, Vec<u8>)> {
        let record = read_record(&mut self.stream)?.ok_or_else(|| bad("connection closed"))?;
        let h = Header::decode(&mut Reader::new(&record)).map_err(|e| bad(e.to_string()))?;
        Ok((h, record.get(HEADER_LEN..).unwrap_or_default().to_vec()))
    }

    /// Sends `request` and returns its reply (header, body); posts in between are queued.
    pub fn call(&mut self, request: &Request) -> io::Result<(Header, Vec<u8>)> {
        let seq = self.send(request)?;
        loop {
            let (h, body) = self.receive()?;
            if h.message_type == MessageType::Reply && h.reply_sequence == seq {
                return Ok((h, body));
            }
            self.posts.push_back(Post {
                message: h.message,
                body,
            });
        }
    }

    /// The reply's error: the header's if set, else the body's first word.
    pub fn error(h: &Header, body: &[u8]) -> Error {
        if h.error != 0 {
            return Error(h.error);
        }
        Error(Reader::new(body).u32().unwrap_or(u32::MAX))
    }

    /// Calls and requires NO_ERR; returns the body.
    pub fn expect_ok(&mut self, request: &Request) -> io::Result<Vec<u8>> {
        let (h, body) = self.call(request)?;
        match Self::error(&h, &body) {
            Error::NO_ERR => Ok(body),
            e => Err(bad(format!("{request:?}: NDMP error {}", e.0))),
        }
    }

    /// Reads one message from the connection, queueing it if it is a post.
    pub fn pump(&mut self) -> io::Result<()> {
        let (h, body) = self.receive()?;
        if h.message_type == MessageType::Request {
            self.posts.push_back(Post {
                message: h.message,
                body,
            });
        }
        Ok(())
    }

    /// The next post (queued, or read from the connection).
    pub fn next_post(&mut self) -> io::Result<Post> {
        if let Some(p) = self.posts.pop_front() {
            return Ok(p);
        }
        loop {
            let (h, body) = self.receive()?;
            if h.message_type == MessageType::Request {
                return Ok(Post {
                    message: h.message,
                    body,
                });
            }
        }
    }

    /// Waits for a post with `message`, keeping the others in order.
    pub fn wait_post(&mut self, message: u32) -> io::Result<Post> {
        if let Some(i) = self.posts.iter().position(|p| p.message == message) {
            if let Some(p) = self.posts.remove(i) {
                return Ok(p);
            }
        }
        loop {
            let (h, body) = self.receive()?;
            if h.message_type != MessageType::Request {
                continue;
            }
            let p = Post {
                message: h.message,
                body,
            };
            if p.message == message {
                return Ok(p);
            }
            self.posts.push_back(p);
        }
    }
}
