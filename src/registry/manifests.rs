//! Manifests and indexes: GET, HEAD (tag to digest without counting
//! against a pull limit) and PUT (a tag left alone when it already names
//! the digest; an immutable tag's refusal named).

use super::*;

impl Client {
    /// GET a manifest: its bytes and media type. `reference` is a tag or digest.
    pub async fn get_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String), Error> {
        let response = self.manifest_response(host, repo, reference).await?;
        let what = format!("{host}/{repo}:{reference}");
        let response = check(response, &what).await?;
        read_manifest(response, &what).await
    }

    /// A manifest that may well not exist (a cache lookup): None for a 404.
    pub async fn find_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>, Error> {
        let response = self.manifest_response(host, repo, reference).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let what = format!("{host}/{repo}:{reference}");
        let response = check(response, &what).await?;
        read_manifest(response, &what).await.map(Some)
    }

    /// HEAD a manifest: the digest (Docker-Content-Digest) and media type the
    /// registry gives for `reference`, without its body. Docker Hub counts
    /// manifest GETs against its pull limit, not HEADs. None when the
    /// registry gives no usable digest or will not answer a HEAD: the caller
    /// then GETs.
    pub async fn head_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, Error> {
        self.head_manifest_as(host, repo, reference, "pull").await
    }

    /// The same, under the token a push uses (`actions` `pull,push`).
    pub(super) async fn head_manifest_as(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        actions: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let scopes = [format!("repository:{repo}:{actions}")];
        let path = format!("v2/{repo}/manifests/{reference}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.head(base.join(&path).expect("valid path"))
                    .header(ACCEPT, MANIFEST_TYPES.join(", "))
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            let busy = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if busy {
                return Err(status_error(response, &format!("{host}/{repo}:{reference}")).await);
            }
            return Ok(None);
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        };
        let digest = header("Docker-Content-Digest").filter(|d| oci::sha256_hex(d).is_some());
        let media_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
        Ok(digest.map(|d| (d, media_type)))
    }

    pub(super) async fn manifest_response(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<Response, Error> {
        let scopes = [format!("repository:{repo}:pull")];
        let path = format!("v2/{repo}/manifests/{reference}");
        self.send(host, &scopes, &|c, base| {
            c.get(base.join(&path).expect("valid path"))
                .header(ACCEPT, MANIFEST_TYPES.join(", "))
        })
        .await
    }

    /// PUT a manifest under `tag` unless the tag already names `digest`
    /// (a HEAD says so): a registry with immutable tags (ECR) refuses even
    /// an identical overwrite. True if it was put, false if already there.
    pub async fn put_tag(
        &self,
        host: &str,
        repo: &str,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &str,
    ) -> Result<bool, Error> {
        let existing = self
            .head_manifest_as(host, repo, tag, "pull,push")
            .await?
            .map(|(d, _)| d);
        if existing.as_deref() == Some(digest) {
            return Ok(false);
        }
        let reported = self
            .put_manifest_over(
                host,
                repo,
                tag,
                bytes,
                media_type,
                existing.as_deref(),
                digest,
            )
            .await?;
        if let Some(d) = reported.filter(|d| d != digest) {
            return Err(error(
                &format!("{host}/{repo}:{tag}"),
                format!("the registry stored the manifest as {d}, not {digest}"),
                "the registry rewrote the manifest; push to a registry that keeps manifests as sent",
            ));
        }
        Ok(true)
    }

    /// PUT a manifest under `reference` (a tag or digest). Returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Option<String>, Error> {
        self.put_manifest_over(host, repo, reference, bytes, media_type, None, "")
            .await
    }

    /// PUT a manifest; `existing` is the digest the tag named before, if
    /// known, and `digest` the one being put, both named if the registry
    /// refuses to move an immutable tag.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn put_manifest_over(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        existing: Option<&str>,
        digest: &str,
    ) -> Result<Option<String>, Error> {
        let scopes = [format!("repository:{repo}:pull,push")];
        let path = format!("v2/{repo}/manifests/{reference}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.request(Method::PUT, base.join(&path).expect("valid path"))
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.to_vec())
            })
            .await?;
        let what = format!("{host}/{repo}:{reference}");
        let status = response.status();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT {
            // ECR answers an overwrite of an immutable tag with 400
            // TAG_INVALID or MANIFEST_TAG_IMMUTABLE; others with 409.
            let body = body::read_some(response, MAX_ERROR_BODY, &what).await;
            let codes = error_codes(&body);
            let immutable = status == StatusCode::CONFLICT
                || codes
                    .iter()
                    .any(|c| c == "TAG_INVALID" || c == "MANIFEST_TAG_IMMUTABLE");
            let detail = registry_message(&body);
            if immutable {
                let had = existing.map_or("another digest".to_string(), |d| format!("digest {d}"));
                let ours = if digest.is_empty() {
                    String::new()
                } else {
                    format!(", not {digest}")
                };
                return Err(error(
                    &what,
                    format!(
                        "the tag is immutable and already exists with {had}{ours}; the registry refused to move it ({status}{detail})"
                    ),
                    "push under a new tag (or by digest), or allow tag overwrites on the repository",
                ));
            }
            return Err(error(
                &what,
                format!("the registry answered {status}{detail}"),
                "check the registry's logs",
            ));
        }
        if status != StatusCode::CREATED {
            return Err(status_error(response, &what).await);
        }
        Ok(response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string))
    }
}

/// A manifest's bytes (refused above MAX_MANIFEST) and the media type the registry gave it.
pub(super) async fn read_manifest(
    response: Response,
    what: &str,
) -> Result<(Vec<u8>, String), Error> {
    let media_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let body = body::read_capped(response, MAX_MANIFEST, what, "the manifest").await?;
    Ok((body, media_type))
}
