//! Kafka frames decoded and encoded on the connection's own task.
//!
//! Tansu's `BytesFrameLayer` sends the decoding of every request, and then
//! the encoding of its response, to tokio's blocking pool
//! (`spawn_blocking`): two trips to another thread and back for each
//! request. On two cores those trips cost more than the work they carry.
//! A frame decodes in microseconds. Under load the pool grew to 46 threads,
//! and the process switched threads a third more often per order than it
//! does with this layer (docs/benchmarks.md, twenty-second measurement).
//!
//! [`InlineFrameLayer`] turns bytes into a frame and the answer back into
//! bytes where the request is served. The embedded broker has no SASL, so
//! this layer has none either: it is Tansu's layer without a SASL
//! configuration, minus the hand-overs.

use bytes::Bytes;
use rama::{Context, Layer, Service};
use tansu_sans_io::{Frame, Header};

/// Wraps a service of frames into a service of bytes (see the module).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct InlineFrameLayer;

impl<S> Layer<S> for InlineFrameLayer {
    type Service = InlineFrameService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InlineFrameService { inner }
    }
}

/// Bytes in, frames to the inner service, bytes out, all on the calling task.
#[derive(Clone, Debug)]
pub(super) struct InlineFrameService<S> {
    inner: S,
}

impl<S, State> Service<State, Bytes> for InlineFrameService<S>
where
    S: Service<State, Frame, Response = Frame>,
    S::Error: From<tansu_sans_io::Error>,
    State: Clone + Send + Sync + 'static,
{
    type Response = Bytes;
    type Error = S::Error;

    async fn serve(&self, ctx: Context<State>, request: Bytes) -> Result<Bytes, S::Error> {
        let request = Frame::request_from_bytes(request)?;
        let (api_key, api_version) = (request.api_key()?, request.api_version()?);
        let correlation_id = request.correlation_id()?;
        let Frame { body, .. } = self.inner.serve(ctx, request).await?;
        Ok(Frame::response(Header::Response { correlation_id }, body, api_key, api_version)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tansu_sans_io::{ApiKey as _, ApiVersionsRequest, ApiVersionsResponse, Body};
    use tansu_service::BytesFrameLayer;

    /// Answers an `ApiVersions` request (and only that) with one version.
    #[derive(Clone, Debug)]
    struct Versions;

    impl Service<(), Frame> for Versions {
        type Response = Frame;
        type Error = tansu_broker::Error;

        async fn serve(&self, _ctx: Context<()>, request: Frame) -> Result<Frame, Self::Error> {
            assert_eq!(request.api_key()?, ApiVersionsRequest::KEY);
            let version = tansu_sans_io::api_versions_response::ApiVersion::default()
                .api_key(ApiVersionsRequest::KEY)
                .min_version(0)
                .max_version(3);
            let response = ApiVersionsResponse::default()
                .error_code(0)
                .api_keys(Some(vec![version]))
                .throttle_time_ms(Some(0))
                .finalized_features(Some(vec![]))
                .finalized_features_epoch(Some(-1))
                .supported_features(Some(vec![]))
                .zk_migration_ready(Some(false));
            Ok(Frame {
                size: 0,
                header: Header::Response { correlation_id: request.correlation_id()? },
                body: Body::ApiVersionsResponse(response),
            })
        }
    }

    fn request(correlation_id: i32) -> Bytes {
        let header = Header::Request {
            api_key: ApiVersionsRequest::KEY,
            api_version: 3,
            correlation_id,
            client_id: Some("test".into()),
        };
        let body = ApiVersionsRequest::default()
            .client_software_name(Some("test".into()))
            .client_software_version(Some("1".into()));
        Frame::request(header, body.into()).expect("encodes")
    }

    #[tokio::test]
    async fn a_request_is_answered_with_the_bytes_tansus_own_layer_gives() {
        let inline = InlineFrameLayer.layer(Versions).serve(Context::default(), request(4242)).await.expect("served");
        let tansu =
            BytesFrameLayer::default().layer(Versions).serve(Context::default(), request(4242)).await.expect("served");
        assert_eq!(inline, tansu);
        let decoded = Frame::response_from_bytes(inline, ApiVersionsRequest::KEY, 3).expect("decodes");
        assert_eq!(decoded.correlation_id().expect("has one"), 4242);
        let Body::ApiVersionsResponse(answer) = decoded.body else { panic!("not an ApiVersions answer") };
        assert_eq!(answer.api_keys.map(|keys| keys.len()), Some(1));
    }

    #[tokio::test]
    async fn bytes_that_are_no_request_are_an_error_not_a_panic() {
        let service = InlineFrameLayer.layer(Versions);
        assert!(service.serve(Context::default(), Bytes::from_static(&[0, 0, 0, 3, 1])).await.is_err());
    }
}
