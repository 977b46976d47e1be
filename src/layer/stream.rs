//! Uploading a layer while it is being written. Its compressed bytes go to
//! the blob file and, through a small bounded channel, into one PATCH to the
//! push registry; when the layer is done, a PUT with its digest closes the
//! session. The digest is not known until the end, so these uploads skip the
//! usual HEAD; any failure just leaves the blob to the ordinary push, which
//! uploads it from disk.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::layer::write::LayerBlob;
use crate::registry::Client;

/// Bytes per message on the channel, and messages in flight.
const PIECE: usize = 1 << 20;
const IN_FLIGHT: usize = 8;

pub struct Streams {
    handle: Handle,
    client: Arc<Client>,
    host: String,
    repo: String,
    started: Mutex<BTreeMap<usize, JoinHandle<Result<reqwest::Url, Error>>>>,
}

impl Streams {
    pub fn new(handle: Handle, client: Arc<Client>, host: &str, repo: &str) -> Streams {
        Streams {
            handle,
            client,
            host: host.to_string(),
            repo: repo.to_string(),
            started: Mutex::new(BTreeMap::new()),
        }
    }

    /// A writer for layer `i`'s compressed bytes, or None if no upload
    /// session could be opened. Called from a layer-writing thread.
    pub fn tee(&self, i: usize) -> Option<Box<dyn Write + Send>> {
        let location = match self
            .handle
            .block_on(self.client.start_upload(&self.host, &self.repo))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!("no streamed upload for layer {i}: {e}");
                return None;
            }
        };
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(IN_FLIGHT);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let body = reqwest::Body::wrap_stream(chunks);
        let (client, host, repo) = (
            Arc::clone(&self.client),
            self.host.clone(),
            self.repo.clone(),
        );
        let task = self
            .handle
            .spawn(async move { client.patch_stream(&host, &repo, location, body).await });
        self.started.lock().expect("lock").insert(i, task);
        Some(Box::new(ChannelWriter {
            tx: Some(tx),
            buf: Vec::with_capacity(PIECE),
        }))
    }

    /// Close every streamed upload whose layer was written; returns the
    /// digests now in the registry.
    pub fn finish(self, blobs: &[LayerBlob]) -> Vec<String> {
        let started = self.started.into_inner().expect("lock");
        let mut done = Vec::new();
        for (i, task) in started {
            let Some(blob) = blobs.get(i) else { continue };
            let result = self.handle.block_on(async {
                let location = task.await.map_err(|e| {
                    crate::registry::error(&self.host, format!("upload task failed: {e}"), "retry")
                })??;
                self.client
                    .finish_upload(&self.host, &self.repo, location, &blob.digest)
                    .await
            });
            match result {
                Ok(()) => done.push(blob.digest.clone()),
                Err(e) => tracing::warn!(
                    "streamed upload of layer {} failed ({e}); it goes from disk instead",
                    blob.digest
                ),
            }
        }
        done
    }
}

/// Hands bytes to the upload in 1 MiB messages. If the upload has stopped,
/// the bytes are dropped quietly: the layer file is what counts.
struct ChannelWriter {
    tx: Option<mpsc::Sender<io::Result<Vec<u8>>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) {
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        if let Some(tx) = &self.tx {
            if tx.blocking_send(Ok(piece)).is_err() {
                self.tx = None;
            }
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.tx.is_none() {
            return Ok(data.len());
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= PIECE {
            self.send();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.send();
        }
    }
}
