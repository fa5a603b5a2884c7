//! Checking and creating the bucket. object_store has no bucket calls, so these two requests
//! are built here, signed with object_store's own SigV4 signer and sent through an HTTP client
//! made from the same `ClientOptions` (timeouts, TLS, plain-HTTP permission) as the store.

use bytes::Bytes;
use object_store::ClientOptions;
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{
    HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector,
};

use super::error::{BoxError, S3ErrorResponse};

/// Longest response body kept in an error (S3 error documents are a few hundred bytes).
const MAX_ERROR_BODY: usize = 4096;

#[derive(Debug, Clone)]
pub(crate) struct BucketAdmin {
    client: HttpClient,
    /// `http://host:port` without a trailing slash.
    endpoint: String,
    bucket: String,
    region: String,
    credentials: AwsCredentialProvider,
}

impl BucketAdmin {
    pub(crate) fn new(
        options: &ClientOptions,
        endpoint: String,
        bucket: String,
        region: String,
        credentials: AwsCredentialProvider,
    ) -> Result<Self, object_store::Error> {
        Ok(BucketAdmin {
            client: ReqwestConnector::default().connect(options)?,
            endpoint,
            bucket,
            region,
            credentials,
        })
    }

    fn bucket_url(&self) -> String {
        format!("{}/{}", self.endpoint, encode(&self.bucket))
    }

    /// Whether the bucket exists, by listing at most one key under `prefix` (so the check needs
    /// the same `s3:ListBucket` permission backups need anyway, and works for prefix-scoped
    /// policies). `Ok(false)` only for 404.
    pub(crate) async fn exists(&self, prefix: &str) -> Result<bool, BoxError> {
        let mut url = format!("{}?list-type=2&max-keys=1", self.bucket_url());
        if !prefix.is_empty() {
            url.push_str("&prefix=");
            url.push_str(&encode(prefix));
        }
        match self.send("GET", url, Bytes::new()).await {
            Ok(()) => Ok(true),
            Err(err) => match err.downcast_ref::<S3ErrorResponse>() {
                Some(response) if response.status == 404 => Ok(false),
                _ => Err(err),
            },
        }
    }

    /// `PUT /<bucket>`. Outside us-east-1 AWS wants the region in a CreateBucketConfiguration.
    /// A bucket that appeared meanwhile (BucketAlreadyOwnedByYou) counts as created.
    pub(crate) async fn create(&self) -> Result<(), BoxError> {
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        match self.send("PUT", self.bucket_url(), body).await {
            Ok(()) => Ok(()),
            Err(err) => match err.downcast_ref::<S3ErrorResponse>() {
                Some(response) if response.body.contains("BucketAlreadyOwnedByYou") => Ok(()),
                _ => Err(err),
            },
        }
    }

    async fn send(&self, method: &'static str, url: String, body: Bytes) -> Result<(), BoxError> {
        let credential = self.credentials.get_credential().await?;
        let mut request = HttpRequest::new(HttpRequestBody::from(body));
        // object_store re-exports the request type but not http::Method/Uri; FromStr is
        // inferred from the field types.
        *request.method_mut() = method.parse().map_err(|e| -> BoxError { Box::new(e) })?;
        *request.uri_mut() = url.parse().map_err(|e| -> BoxError { Box::new(e) })?;
        AwsAuthorizer::new(&credential, "s3", &self.region).try_authorize(&mut request, None)?;

        let response = self.client.execute(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().bytes().await?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut body = String::from_utf8_lossy(&bytes).into_owned();
        if body.len() > MAX_ERROR_BODY {
            let mut cut = MAX_ERROR_BODY;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        Err(Box::new(S3ErrorResponse {
            method,
            url,
            status,
            body,
        }))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as SigV4 canonical requests
/// expect for path segments and query values.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_only() {
        assert_eq!(encode("my-bucket.v1_x~"), "my-bucket.v1_x~");
        assert_eq!(encode("Bad_Bucket!"), "Bad_Bucket%21");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("ø"), "%C3%B8");
    }
}
