//! A client's TCP connection: queries come in length-prefixed frames, several per connection,
//! and answers go back framed, in the order they are decided.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;

use super::attempt::is_transient;
use super::wire;

/// A connection with nothing to do is closed after this: a stub resolver asks its query or
/// two and is gone; one that stays would hold a slot.
pub const IDLE: Duration = Duration::from_secs(5);

/// Answers a client does not read are not kept beyond this: the connection is closed.
const MAX_UNSENT: usize = 4 * 65537;

pub struct Connection {
    stream: TcpStream,
    received: Vec<u8>,
    unsent: Vec<u8>,
    /// The client sent its last bytes (EOF), or is gone: no more reading.
    done_reading: bool,
    /// When it last did something.
    pub active: Instant,
    /// Its queries still being decided.
    pub in_flight: usize,
}

impl Connection {
    pub fn new(stream: TcpStream, now: Instant) -> Connection {
        Connection {
            stream,
            received: Vec::new(),
            unsent: Vec::new(),
            done_reading: false,
            active: now,
            in_flight: 0,
        }
    }

    pub fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let mut flags = PollFlags::empty();
        if !self.done_reading {
            flags |= PollFlags::POLLIN;
        }
        if !self.unsent.is_empty() {
            flags |= PollFlags::POLLOUT;
        }
        (!flags.is_empty()).then(|| (self.stream.as_fd(), flags))
    }

    /// Serve the socket: read the queries that came (each a frame's bytes, in order), write
    /// what answers it takes. `Err` when the connection is to be closed.
    pub fn serve(&mut self, buffer: &mut [u8], now: Instant) -> io::Result<Vec<Vec<u8>>> {
        let mut queries = Vec::new();
        while !self.done_reading {
            match self.stream.read(buffer) {
                Ok(0) => self.done_reading = true,
                Ok(n) => {
                    self.active = now;
                    self.received
                        .extend_from_slice(buffer.get(..n).unwrap_or_default());
                    while let Some(query) = wire::take_frame(&mut self.received) {
                        queries.push(query);
                    }
                    // Whatever is left is less than one frame, or not DNS at all.
                    if self.received.len() > 2 + 65535 {
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                    // Leave the rest for the next turn: one client cannot hold the loop.
                    if queries.len() >= 16 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush()?;
        Ok(queries)
    }

    /// Queue one answer and write what the socket takes now.
    pub fn answer(&mut self, message: &[u8], now: Instant) -> io::Result<()> {
        self.active = now;
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.unsent.len() > MAX_UNSENT {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        self.unsent.extend(wire::framed(message));
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.unsent.is_empty() {
            match self.stream.write(&self.unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.unsent.drain(..n.min(self.unsent.len()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Nothing more will happen on it: idle too long, or the client is done and has all its
    /// answers.
    pub fn is_finished(&self, now: Instant) -> bool {
        let quiet = self.in_flight == 0 && self.unsent.is_empty();
        quiet && (self.done_reading || now >= self.active + IDLE)
    }

    /// When it will be closed for being idle, if nothing happens.
    pub fn idle_deadline(&self) -> Option<Instant> {
        (self.in_flight == 0 && self.unsent.is_empty()).then_some(self.active + IDLE)
    }
}
