//! `GET /metrics`: the Prometheus scrape, unauthenticated like `/health` (bind the HTTP
//! listener to a private address, or filter it, where the counts are sensitive).

use hyper::{Method, Response, StatusCode};

use super::{ApiState, Body, reply};
use crate::metrics::{CONTENT_TYPE, Gauges};

pub(super) fn handle(method: &Method, state: &ApiState) -> Response<Body> {
    match *method {
        Method::GET | Method::HEAD => {
            let mut calls_finished = [("", 0); 5];
            let finals = state
                .calls
                .finished_counts()
                .into_iter()
                .filter(|(st, _)| st.is_final());
            for (slot, (st, n)) in calls_finished.iter_mut().zip(finals) {
                *slot = (st.as_str(), n);
            }
            let gauges = Gauges {
                bindings: state.store.binding_count(),
                presence: state.presence.counts(),
                calls_active: state.calls.live_count(),
                calls_finished,
            };
            let text = state.metrics.render(&gauges);
            reply::with_type(StatusCode::OK, CONTENT_TYPE, text.into())
        }
        _ => reply::method_not_allowed("GET, HEAD"),
    }
}
