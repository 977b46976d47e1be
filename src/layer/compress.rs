//! Layer compression on every core. zstd does its own multi-threading
//! (its output does not depend on the number of workers); gzip is
//! block-parallel, the way pigz does it: the stream is cut into fixed
//! 1 MiB chunks, each deflated on its own thread with the previous 32 KiB
//! as its dictionary and ended with a sync flush, and the pieces are written
//! in order behind one gzip header. The bytes depend only on the data, the
//! chunk size, the level and the deflater (zlib-rs; ISA-L for levels 1 to 3
//! in a build with the `isal` feature), never on thread count or timing.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::oci::Compression as Kind;

pub const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32 << 10;
/// A fixed header: no name, mtime 0, no extra flags, OS "unknown".
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A layer's compressor: gzip or zstd, both using `threads` cores.
pub enum Encoder<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W, kind: Kind, level: u32, threads: usize) -> io::Result<Self> {
        Ok(match kind {
            Kind::Gzip => Encoder::Gzip(ParallelGzip::new(out, level, threads)?),
            Kind::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(out, level as i32)?;
                z.multithread(threads as u32)?;
                z.include_checksum(false)?;
                Encoder::Zstd(z)
            }
            Kind::None => Encoder::None(out),
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A chunk on its way through a worker. Its buffers come back with the
/// result and are reused, so the same few allocations serve a whole layer.
struct Job {
    seq: u64,
    data: Vec<u8>,
    dict: Vec<u8>,
    out: Vec<u8>,
    last: bool,
}

pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    chunk: Vec<u8>,
    dict: Vec<u8>,
    crc: Crc,
    next_seq: u64,
    written_seq: u64,
    pool: Option<Pool>,
    done: BTreeMap<u64, Job>,
    spare: Vec<Vec<u8>>,
}

struct Pool {
    jobs: Option<SyncSender<Job>>,
    results: Receiver<io::Result<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(ParallelGzip {
            out,
            level,
            threads: threads.max(1),
            chunk: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            crc: Crc::new(),
            next_seq: 0,
            written_seq: 0,
            pool: None,
            done: BTreeMap::new(),
            spare: Vec::new(),
        })
    }

    /// Flush the last chunk, write the trailer, and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.written_seq < self.next_seq {
            self.collect_one()?;
        }
        if let Some(mut pool) = self.pool.take() {
            drop(pool.jobs.take());
            for w in pool.workers.drain(..) {
                let _ = w.join();
            }
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Hand the current chunk to a worker (or deflate it here when it is the
    /// whole stream, to spare small layers the threads).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        let mut next = self.buffer();
        next.reserve(CHUNK);
        let data = std::mem::replace(&mut self.chunk, next);
        let mut dict = self.buffer();
        std::mem::swap(&mut dict, &mut self.dict);
        self.dict.clear();
        self.dict
            .extend_from_slice(&data[data.len().saturating_sub(WINDOW)..]);
        let mut job = Job {
            seq: self.next_seq,
            data,
            dict,
            out: self.buffer(),
            last,
        };
        self.next_seq += 1;
        if self.pool.is_none() && (last || self.threads == 1) {
            deflate(self.level, &mut job)?;
            self.done.insert(job.seq, job);
            return self.drain_in_order();
        }
        let pool = self
            .pool
            .get_or_insert_with(|| Pool::start(self.threads, self.level));
        let sender = pool.jobs.as_ref().expect("open until finish");
        sender
            .send(job)
            .map_err(|_| io::Error::other("compression worker stopped"))?;
        // Keep a bounded number of chunks in flight: memory stays constant.
        while self.next_seq - self.written_seq > self.threads as u64 {
            self.collect_one()?;
        }
        Ok(())
    }

    fn collect_one(&mut self) -> io::Result<()> {
        if self.done.contains_key(&self.written_seq) {
            return self.drain_in_order();
        }
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| io::Error::other("no compression result pending"))?;
        let job = pool
            .results
            .recv()
            .map_err(|_| io::Error::other("compression worker stopped"))??;
        self.done.insert(job.seq, job);
        self.drain_in_order()
    }

    fn drain_in_order(&mut self) -> io::Result<()> {
        while let Some(job) = self.done.remove(&self.written_seq) {
            self.out.write_all(&job.out)?;
            self.written_seq += 1;
            for mut b in [job.data, job.dict, job.out] {
                b.clear();
                self.spare.push(b);
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pool {
    fn start(threads: usize, level: u32) -> Pool {
        let (jobs, job_rx) = sync_channel::<Job>(threads);
        let (result_tx, results) = sync_channel(threads + 1);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let job_rx = Arc::clone(&job_rx);
                let result_tx = result_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        let result = deflate(level, &mut job).map(|()| job);
                        if result_tx.send(result).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            results,
            workers,
        }
    }
}

/// Raw deflate of one chunk into `job.out`, primed with the previous chunk's
/// tail; all but the last end on a byte boundary (sync flush) so the pieces
/// concatenate.
fn deflate(level: u32, job: &mut Job) -> io::Result<()> {
    #[cfg(feature = "isal")]
    if super::isal::serves(level) {
        return super::isal::deflate(level, &job.dict, &job.data, &mut job.out, job.last);
    }
    // A fresh state per chunk: zlib-rs's reset() does not give the same bytes.
    let mut c = Compress::new(Compression::new(level), false);
    if !job.dict.is_empty() {
        c.set_dictionary(&job.dict).map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    job.out.clear();
    job.out.reserve(job.data.len() + job.data.len() / 8 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&job.data[consumed..], &mut job.out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == job.data.len();
        let done = match status {
            Status::StreamEnd => true,
            // A sync flush is complete when all input is taken and room was left over.
            Status::Ok | Status::BufError => {
                !job.last && all_in && job.out.len() < job.out.capacity()
            }
        };
        if done {
            return Ok(());
        }
        let more = job.out.capacity().max(64 << 10);
        job.out.reserve(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text and binary, repetitive enough to compress, 3.5 chunks long.
    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        let mut x: u32 = 1;
        while data.len() < CHUNK * 7 / 2 {
            data.extend_from_slice(
                format!("line {} of the sample, value {x}\n", data.len() / 40).as_bytes(),
            );
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.extend_from_slice(&x.to_le_bytes());
        }
        data
    }

    fn gzip(data: &[u8], threads: usize, level: u32, piece: usize) -> Vec<u8> {
        let mut w = ParallelGzip::new(Vec::new(), level, threads).unwrap();
        for part in data.chunks(piece) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn output_is_valid_gzip_and_independent_of_threads() {
        let data = sample();
        let one = gzip(&data, 1, 1, 7919);
        let two = gzip(&data, 2, 1, 65536);
        let eight = gzip(&data, 8, 1, 1 << 20);
        assert_eq!(one, two);
        assert_eq!(one, eight);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len() / 2);
    }

    /// Every gzip layer digest kiln makes depends on these bytes: a change
    /// of deflater, chunking or level mapping must be deliberate (README,
    /// release notes). ISA-L serves levels 1 to 3 in a build with `isal`.
    #[test]
    fn golden_digests_per_level_for_1_2_and_8_threads() {
        let want: &[(u32, &str)] = if cfg!(feature = "isal") {
            &[
                (
                    1,
                    "bb174028bcf3ea57a5fd4d345faf166769681e1a8a844d8fb7eddaf15b8969f9",
                ),
                (
                    2,
                    "9c064deac2558d779504e0c8dd6dd08124a1c4e9c36bd9da9c5b394463063550",
                ),
                (
                    3,
                    "00c64ab6b7c04fe86099906dbc3825b93220a6d944304956a9131f4555a59413",
                ),
                (
                    6,
                    "840fcba9c3b7257d0d2834100e33ae5040bb48d3e35ec5f05cfb8882a732b8e8",
                ),
            ]
        } else {
            &[
                (
                    1,
                    "eae9a372dceb87502ea1013a700161288ea19674d9d29fdac5e32fd9d18f9c86",
                ),
                (
                    2,
                    "b9f91f26f43f2aa901b5d12688c805844797c3c4dc7979eafef06b8b378ff314",
                ),
                (
                    3,
                    "45a33f1e48f249b03436515987418b3973d3cdd7ef0e6698f39fd33ab9fe652b",
                ),
                (
                    6,
                    "840fcba9c3b7257d0d2834100e33ae5040bb48d3e35ec5f05cfb8882a732b8e8",
                ),
            ]
        };
        let data = sample();
        let mut got = Vec::new();
        for (level, _) in want {
            let one = crate::oci::digest::sha256(&gzip(&data, 1, *level, 65536));
            for threads in [2, 8] {
                let gz = gzip(&data, threads, *level, 7919);
                assert_eq!(
                    crate::oci::digest::sha256(&gz),
                    one,
                    "level {level}, {threads} threads"
                );
            }
            got.push((*level, one));
        }
        let want: Vec<(u32, String)> = want
            .iter()
            .map(|(l, d)| (*l, format!("sha256:{d}")))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn zstd_output_is_independent_of_threads() {
        let data = sample();
        let z = |threads| {
            let mut e = Encoder::new(Vec::new(), Kind::Zstd, 3, threads).unwrap();
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let (one, two) = (z(1), z(2));
        assert_eq!(one, two);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }

    #[test]
    fn empty_and_small_and_stored() {
        for data in [Vec::new(), b"hello".to_vec(), vec![7u8; CHUNK], sample()] {
            for level in [0, 1, 6] {
                let gz = gzip(&data, 2, level, 4096);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&gz[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "level {level}, {} bytes", data.len());
            }
        }
    }
}
