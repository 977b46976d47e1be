//! The OCI 1.1 referrers API: the manifests whose `subject` is a digest.

use super::*;

impl Client {
    /// GET `/v2/<repo>/referrers/<digest>`: the index of referrers, or None
    /// when the registry has no such API (distribution 2.8 answers 404;
    /// others 400, 405 or a non-index body), so the caller falls back to
    /// the referrers tag schema.
    pub async fn referrers(
        &self,
        host: &str,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let scopes = [format!("repository:{repo}:pull")];
        let path = format!("v2/{repo}/referrers/{digest}");
        let response = self
            .send(host, &scopes, &|c, base| {
                c.get(base.join(&path).expect("valid path"))
                    .header(ACCEPT, oci::OCI_INDEX)
            })
            .await?;
        let what = format!("{host}/{repo}/referrers/{digest}");
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(status_error(response, &what).await);
        }
        if !status.is_success() {
            return Ok(None);
        }
        let (body, media_type) = super::manifests::read_manifest(response, &what).await?;
        Ok((media_type == oci::OCI_INDEX).then_some(body))
    }
}
