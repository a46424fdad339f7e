//! `GET /metrics`: the Prometheus scrape, unauthenticated like `/health` (bind the HTTP
//! listener to a private address, or filter it, where the counts are sensitive).

use std::fmt::Write as _;

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
            let presence = state.presence.counts();
            let gauges = Gauges {
                bindings: state.store.binding_count(),
                aors_available: presence.available,
                aors_busy: presence.busy,
                aors_offline: presence.offline,
                calls_active: state.calls.live_count(),
                calls_setting_up: state.calls.setups(),
                calls_shed: state.calls.shed_count(),
                calls_finished,
                auth_failures: state.guard.failure_count(),
                auth_bans: state.guard.ban_count(),
                auth_bans_active: state.guard.list(crate::time::unix_now()).len(),
                calls_refused: state
                    .calls
                    .limits()
                    .refused_counts()
                    .map(|(l, n)| (l.as_str(), n)),
            };
            let mut text = state.metrics.render(&gauges);
            let _ = write!(
                text,
                "# HELP location_store_up 1 when the location store can store a REGISTER (always, for the memory store).\n\
                 # TYPE location_store_up gauge\nlocation_store_up {}\n",
                u8::from(state.store.is_up())
            );
            stream_metrics(&mut text, &state.calls.streams);
            if let Some(media) = &state.media {
                media_gauges(&mut text, media);
            }
            reply::with_type(StatusCode::OK, CONTENT_TYPE, text.into())
        }
        _ => reply::method_not_allowed("GET, HEAD"),
    }
}

/// The RTP port pool: `rtp_port_pairs_free` drops by one per open call leg and comes back
/// when the leg's endpoint closes; `rtp_port_pairs_total` is the size of `rtp_ports`.
fn media_gauges(out: &mut String, media: &crate::media::MediaEngine) {
    let gauges = [
        (
            "rtp_port_pairs_free",
            "RTP/RTCP port pairs free for new call legs.",
            media.free_port_pairs(),
        ),
        (
            "rtp_port_pairs_total",
            "RTP/RTCP port pairs in [server] rtp_ports.",
            media.total_port_pairs(),
        ),
    ];
    for (name, help, v) in gauges {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        );
    }
    let s = media.stats();
    let _ = write!(
        out,
        "# HELP rtp_packets_relayed_total RTP packets relayed between bridged legs.\n\
         # TYPE rtp_packets_relayed_total counter\nrtp_packets_relayed_total {}\n\
         # HELP rtp_packets_dropped_total RTP/RTCP packets dropped by the relay, by reason \
         (foreign: from a source the latch refused).\n\
         # TYPE rtp_packets_dropped_total counter\n\
         rtp_packets_dropped_total{{reason=\"foreign\"}} {}\n\
         rtp_packets_dropped_total{{reason=\"malformed\"}} {}\n\
         rtp_packets_dropped_total{{reason=\"unroutable\"}} {}\n",
        s.relayed, s.foreign, s.malformed, s.unroutable
    );
    let _ = write!(
        out,
        "# HELP conference_mix_ticks_total 20 ms conference mixer ticks run, summed over relay threads.\n\
         # TYPE conference_mix_ticks_total counter\nconference_mix_ticks_total {}\n\
         # HELP conference_mix_ticks_skipped_total Mixer ticks skipped: a relay thread fell over 100 ms behind.\n\
         # TYPE conference_mix_ticks_skipped_total counter\nconference_mix_ticks_skipped_total {}\n\
         # HELP conference_participant_frames_total Participant-frames (20 ms) mixed.\n\
         # TYPE conference_participant_frames_total counter\nconference_participant_frames_total {}\n",
        s.mix_ticks, s.mix_ticks_skipped, s.mix_frames
    );
    histogram(
        out,
        "conference_mix_tick_lateness_seconds",
        "How late each mixer tick started against its 20 ms schedule.",
        &s.mix_lateness,
    );
    histogram(
        out,
        "conference_mix_tick_duration_seconds",
        "How long each mixer tick took: reading, mixing and sending for every conference of a relay thread.",
        &s.mix_duration,
    );
}

/// Media streams (`<Connect>`/`<Start><Stream>`, REST): started, ended by how, live, and
/// what stuck apps cost (frames dropped rather than queued without bound).
fn stream_metrics(out: &mut String, streams: &crate::call::stream_records::StreamRecords) {
    let (started, ended, live, dropped) = streams.counts();
    let _ = write!(
        out,
        "# HELP media_streams_started_total Media streams started.
         # TYPE media_streams_started_total counter
media_streams_started_total {started}
         # HELP media_streams_ended_total Media streams ended, by how.
         # TYPE media_streams_ended_total counter
"
    );
    for (end, n) in ended {
        let _ = writeln!(
            out,
            "media_streams_ended_total{{how=\"{}\"}} {n}",
            end.as_str()
        );
    }
    let _ = write!(
        out,
        "# HELP media_streams_active Media streams of live calls.
         # TYPE media_streams_active gauge
media_streams_active {live}
         # HELP media_stream_items_dropped_total Frames and events dropped because an app's queue was full (counted as each stream ends).
         # TYPE media_stream_items_dropped_total counter
media_stream_items_dropped_total {dropped}
"
    );
}

fn histogram(out: &mut String, name: &str, help: &str, h: &crate::media::LatenessSnapshot) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
    let mut cumulative = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        cumulative += n;
        let le = crate::media::lateness::BOUNDS_US
            .get(i)
            .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = write!(
        out,
        "{name}_sum {}\n{name}_count {}\n",
        h.sum_us as f64 / 1e6,
        h.count()
    );
}
