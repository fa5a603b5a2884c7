//! Clients that act as the requester: every request carries `Impersonate-User`, `-Uid`,
//! `-Group` and `-Extra-*` for the identity stamped on a Backup or Restore, so the API server
//! authorises it as that identity (and its own bind/escalate rules apply to RBAC objects).
//!
//! The headers are added in front of the operator's own client, so an impersonating client
//! shares its connections and TLS sessions: making one costs no round trip.

use std::collections::HashMap;

use kube::client::{Body, ConfigExt};
use kube::{Client, Config};
use tower::ServiceBuilder;

use crate::core::requester::Requester;

#[derive(Debug, thiserror::Error)]
#[error("cannot act as {username:?}: {source}")]
pub struct ImpersonationError {
    username: String,
    source: kube::Error,
}

/// A client that sends every request through `operator`, as `requester`.
pub fn impersonating(
    operator: &Client,
    requester: &Requester,
) -> Result<Client, ImpersonationError> {
    let mut config = Config::new(http::Uri::from_static("https://impersonation.invalid"));
    let auth = &mut config.auth_info;
    auth.impersonate = Some(requester.username.clone());
    auth.impersonate_uid = Some(requester.uid.clone()).filter(|uid| !uid.is_empty());
    auth.impersonate_groups = Some(requester.groups.clone()).filter(|groups| !groups.is_empty());
    auth.impersonate_user_extra = Some(
        requester
            .extra
            .iter()
            .map(|(key, values)| (key.clone(), values.clone()))
            .collect::<HashMap<_, _>>(),
    )
    .filter(|extra| !extra.is_empty());
    // kube's own layer: the header names and the escaping of extra keys are client-go's.
    let headers = config
        .extra_headers_layer()
        .map_err(|source| ImpersonationError {
            username: requester.username.clone(),
            source,
        })?;
    let through = operator.clone();
    let service = ServiceBuilder::new()
        .layer(headers)
        .service(tower::service_fn(move |request: http::Request<Body>| {
            let through = through.clone();
            async move { through.send(request).await }
        }));
    Ok(Client::new(service, operator.default_namespace()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use std::collections::BTreeMap;
    use tower_test::mock;

    #[tokio::test]
    async fn every_request_carries_the_whole_identity() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let operator = Client::new(service, "default");
        let requester = Requester {
            username: "system:serviceaccount:team-a:alice".to_string(),
            uid: "1234".to_string(),
            groups: vec!["system:serviceaccounts".into(), "team-a".into()],
            extra: BTreeMap::from([(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec!["JTI=abc".to_string()],
            )]),
        };
        let client = impersonating(&operator, &requester).unwrap();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.unwrap();
            let headers = request.headers().clone();
            send.send_response(
                Response::builder()
                    .body(Body::from(br#"{"major":"1","minor":"36","gitVersion":"v1.36.3","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#.to_vec()))
                    .unwrap(),
            );
            headers
        });
        client.apiserver_version().await.unwrap();
        let headers = server.await.unwrap();
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(
            all("impersonate-user"),
            ["system:serviceaccount:team-a:alice"]
        );
        assert_eq!(all("impersonate-uid"), ["1234"]);
        assert_eq!(
            all("impersonate-group"),
            ["system:serviceaccounts", "team-a"]
        );
        assert_eq!(
            all("impersonate-extra-authentication.kubernetes.io%2fcredential-id"),
            ["JTI=abc"]
        );
    }

    #[tokio::test]
    async fn a_name_no_header_can_carry_is_an_error() {
        let (service, _handle) = mock::pair::<Request<Body>, Response<Body>>();
        let operator = Client::new(service, "default");
        let requester = Requester {
            username: "line\nbreak".to_string(),
            ..Requester::default()
        };
        let Err(err) = impersonating(&operator, &requester) else {
            panic!("a header cannot carry a line break");
        };
        assert!(err.to_string().contains("cannot act as"), "{err}");
    }
}
