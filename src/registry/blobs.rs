//! Blobs: GET into the cache checked on the way, HEAD, cross-repository
//! mounts, and uploads (one streamed PUT from a file, or a PATCH of bytes
//! as they are produced).

use super::*;

impl Client {
    /// GET a blob into `dest`, checking its size and digest on the way;
    /// nothing is left at `dest` unless it matches.
    pub async fn fetch_blob(
        &self,
        host: &str,
        repo: &str,
        desc: &oci::Descriptor,
        dest: &Path,
        bar: &crate::progress::Bar,
    ) -> Result<(), Error> {
        bar.restart();
        let scopes = [format!("repository:{repo}:pull")];
        let path = format!("v2/{repo}/blobs/{}", desc.digest);
        let response = self
            .send(host, &scopes, &|c, base| {
                c.get(base.join(&path).expect("valid path"))
            })
            .await?;
        let what = format!("{host}/{repo}@{}", desc.digest);
        let response = check(response, &what).await?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = crate::tmp::TempFile::new_in(dir, "blob")?;
        let mut file =
            tokio::fs::File::from_std(tmp.file().try_clone().map_err(|e| Error::Io {
                action: "open",
                path: tmp.path().to_path_buf(),
                source: e,
            })?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut stream = response.bytes_stream();
        let mut guard = body::Guard::new(&what, "the blob");
        while let Some(chunk) = guard.next(&mut stream).await? {
            size += chunk.len() as u64;
            if size > desc.size {
                break;
            }
            bar.inc(chunk.len() as u64);
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| Error::Io {
                action: "write",
                path: tmp.path().to_path_buf(),
                source: e,
            })?;
        }
        file.flush().await.map_err(|e| Error::Io {
            action: "write",
            path: tmp.path().to_path_buf(),
            source: e,
        })?;
        let digest = format!("sha256:{}", hex(&hasher.finalize()));
        if size != desc.size || digest != desc.digest {
            return Err(error(
                &what,
                format!(
                    "the registry sent {size} bytes with digest {digest}, not the {} bytes the manifest names",
                    desc.size
                ),
                "the registry or a proxy is corrupting data; try again",
            ));
        }
        drop(file);
        tmp.persist(dest).map_err(|e| Error::Io {
            action: "store blob",
            path: dest.to_path_buf(),
            source: e,
        })?;
        Ok(())
    }

    pub async fn blob_exists(&self, host: &str, repo: &str, digest: &str) -> Result<bool, Error> {
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/blobs/{digest}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.head(base.join(&path).expect("valid path"))
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_error(response, &format!("{host}/{repo}@{digest}")).await),
        }
    }

    /// Ask the registry to mount `digest` from `from`. True if mounted.
    pub async fn mount(
        &self,
        host: &str,
        repo: &str,
        from: &str,
        digest: &str,
    ) -> Result<bool, Error> {
        let scopes = [
            format!("repository:{repo}:pull,push"),
            format!("repository:{from}:pull"),
        ];
        let path = format!("v2/{repo}/blobs/uploads/");
        let response = self
            .send(host, &scopes, &|c, base| {
                let mut url = base.join(&path).expect("valid path");
                url.query_pairs_mut()
                    .append_pair("mount", digest)
                    .append_pair("from", from);
                c.post(url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            // Not mounted: the registry opened an upload session instead; it expires unused.
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(status_error(response, &format!("{host}/{repo}")).await),
        }
    }

    /// Upload a blob from a file in one streaming request: POST for a fresh
    /// session, then PUT the whole body with the digest.
    pub async fn upload(
        &self,
        host: &str,
        repo: &str,
        digest: &str,
        size: u64,
        file: &Path,
        bar: &crate::progress::Bar,
    ) -> Result<(), Error> {
        let what = format!("{host}/{repo}@{digest}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let mut url = self.start_upload(host, repo).await?;
        url.query_pairs_mut().append_pair("digest", digest);
        let build = |c: &reqwest::Client, _: &Url| {
            let body = match std::fs::File::open(file) {
                // 1 MiB reads: reqwest's own File body reads 4 KiB at a time, each a
                // trip to the blocking pool, which capped uploads near 100 MB/s.
                Ok(f) => {
                    bar.restart();
                    let chunks = tokio_util::io::ReaderStream::with_capacity(
                        tokio::fs::File::from_std(f),
                        1 << 20,
                    );
                    let counter = bar.counter();
                    reqwest::Body::wrap_stream(
                        chunks.inspect_ok(move |c| counter.inc(c.len() as u64)),
                    )
                }
                Err(_) => reqwest::Body::from(Vec::new()),
            };
            c.put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(body)
        };
        let response = self
            .send_as(host, &scopes, &build, Replay::WhenAnswered)
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(()),
            // The session is gone: a replayed PUT whose first try was
            // committed after all. The caller's next try HEADs the blob.
            StatusCode::NOT_FOUND => Err(transient(
                &what,
                "the registry forgot the upload session",
                "try again",
                Retry::Yes,
            )),
            _ => Err(status_error(response, &what).await),
        }
    }

    /// POST for a fresh upload session; returns where to send the bytes.
    pub async fn start_upload(&self, host: &str, repo: &str) -> Result<Url, Error> {
        let what = format!("{host}/{repo}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/blobs/uploads/");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.post(base.join(&path).expect("valid path"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(response, &what).await);
        }
        self.location(host, &response, &what).await
    }

    /// The Location a registry answered with, resolved against the registry,
    /// and refused if it points at another host.
    pub(super) async fn location(
        &self,
        host: &str,
        response: &Response,
        what: &str,
    ) -> Result<Url, Error> {
        let base = self.base(host).await?;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let url = base.join(location).map_err(|_| {
            error(
                what,
                "the registry gave no usable upload location",
                "check the registry",
            )
        })?;
        if url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(error(
                what,
                format!(
                    "the registry sent the upload to another host, `{}`",
                    url.host_str().unwrap_or("")
                ),
                "kiln uploads only to the registry it was asked to push to",
            ));
        }
        Ok(url)
    }

    /// Send a blob's bytes as they are produced, in one PATCH whose body is
    /// `body`; returns where to finish the upload. The body cannot be sent
    /// twice, so an auth challenge here fails the stream (the caller then
    /// uploads from the file).
    pub async fn patch_stream(
        &self,
        host: &str,
        repo: &str,
        location: Url,
        body: reqwest::Body,
    ) -> Result<Url, Error> {
        let what = format!("{host}/{repo}");
        let scopes = [format!("repository:{repo}:pull,push")];
        let body = Mutex::new(Some(body));
        let response = self
            .send(host, &scopes, &|c, _| {
                let body = body
                    .lock()
                    .expect("lock")
                    .take()
                    .unwrap_or_else(|| reqwest::Body::from(Vec::new()));
                c.patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(status_error(response, &what).await);
        }
        self.location(host, &response, &what).await
    }

    /// Close an upload session with the digest of what was sent.
    pub async fn finish_upload(
        &self,
        host: &str,
        repo: &str,
        mut location: Url,
        digest: &str,
    ) -> Result<(), Error> {
        let what = format!("{host}/{repo}@{digest}");
        let scopes = [format!("repository:{repo}:pull,push")];
        location.query_pairs_mut().append_pair("digest", digest);
        let response = self
            .send(host, &scopes, &|c, _| {
                c.put(location.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error(response, &what).await);
        }
        Ok(())
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
