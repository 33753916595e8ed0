//! The bearer-token interceptor every ctl client uses.

/// The interceptor adding `authorization: Bearer <token>` to every request; nameable, so a
/// client type can be written down: `XServiceClient<InterceptedService<Channel, Bearer>>`.
///
/// Use with `XServiceClient::with_interceptor(channel, Bearer::new(token)?)`.
#[derive(Clone, Debug)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The interceptor sending `token`; fails when the token is not valid header text.
    pub fn new(token: &str) -> Result<Bearer, tonic::metadata::errors::InvalidMetadataValue> {
        Ok(Bearer(format!("Bearer {token}").parse()?))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// [`Bearer`] as a closure, for callers that box their interceptor.
pub fn bearer(
    token: &str,
) -> Result<
    impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone,
    tonic::metadata::errors::InvalidMetadataValue,
> {
    let mut auth = Bearer::new(token)?;
    Ok(move |req: tonic::Request<()>| tonic::service::Interceptor::call(&mut auth, req))
}

#[cfg(test)]
mod tests {
    use tonic::service::Interceptor;

    use super::*;

    #[test]
    fn bearer_adds_the_authorization_header() {
        let mut auth = Bearer::new("tok-1").expect("ascii token");
        let req = auth.call(tonic::Request::new(())).expect("the interceptor never refuses");
        let value = req.metadata().get("authorization").expect("an authorization header");
        assert_eq!(value.to_str().ok(), Some("Bearer tok-1"));
        let mut f = bearer("tok-2").expect("ascii token");
        let req = f(tonic::Request::new(())).expect("the closure never refuses");
        assert_eq!(req.metadata().get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer tok-2"));
    }

    #[test]
    fn a_token_that_is_not_header_text_is_refused() {
        assert!(Bearer::new("bad\ntoken").is_err());
    }
}
