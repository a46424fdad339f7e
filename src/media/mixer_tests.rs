use std::collections::HashMap;

use super::*;

fn tone(hz: f64, amp: f64, start: usize) -> Vec<i16> {
    (0..FRAME_SAMPLES)
        .map(|n| {
            (amp * (2.0 * std::f64::consts::PI * hz * (start + n) as f64 / 8000.0).sin()) as i16
        })
        .collect()
}

fn tick(m: &mut Mixer) -> (HashMap<usize, Vec<i16>>, Vec<SpeakerChange>) {
    let mut heard = HashMap::new();
    let mut changes = Vec::new();
    m.tick(
        |k, f| {
            heard.insert(k, f.to_vec());
        },
        |c| changes.push(c),
    );
    (heard, changes)
}

fn add(a: &[i16], b: &[i16]) -> Vec<i16> {
    a.iter().zip(b).map(|(&x, &y)| x + y).collect()
}

#[test]
fn everyone_hears_the_others_and_never_themselves() {
    let mut m = Mixer::default();
    for k in 1..=3 {
        m.add(k, false);
    }
    let (a, b, c) = (
        tone(400.0, 5000.0, 0),
        tone(700.0, 5000.0, 0),
        tone(1100.0, 5000.0, 0),
    );
    // Two frames each: playout starts with one in hand (jitter).
    for _ in 0..2 {
        m.push(1, &a);
        m.push(2, &b);
        m.push(3, &c);
    }
    let (heard, _) = tick(&mut m);
    assert_eq!(heard[&1], add(&b, &c));
    assert_eq!(heard[&2], add(&a, &c));
    assert_eq!(heard[&3], add(&a, &b));
    let (again, _) = tick(&mut m);
    assert_eq!(again, heard, "the frame in hand");
    // Nothing queued: silence for everyone, nobody mixed.
    let (heard, _) = tick(&mut m);
    assert!(heard.values().all(|f| f.iter().all(|&s| s == 0)));
}

#[test]
fn the_muted_are_heard_by_nobody_but_hear_everyone() {
    let mut m = Mixer::default();
    m.add(1, false);
    m.add(2, true);
    m.add(3, false);
    let (a, b, c) = (
        tone(400.0, 5000.0, 0),
        tone(700.0, 5000.0, 0),
        tone(1100.0, 5000.0, 0),
    );
    for _ in 0..2 {
        m.push(1, &a);
        m.push(2, &b);
        m.push(3, &c);
    }
    let (heard, _) = tick(&mut m);
    assert_eq!(heard[&1], c);
    assert_eq!(heard[&2], add(&a, &c));
    assert_eq!(heard[&3], a);
    m.set_muted(2, false);
    m.push(1, &a);
    m.push(2, &b);
    let (heard, _) = tick(&mut m);
    assert_eq!(heard[&3], add(&a, &b));
}

#[test]
fn the_sum_saturates_instead_of_wrapping() {
    let mut m = Mixer::default();
    for k in 1..=3 {
        m.add(k, false);
    }
    let loud = vec![30_000i16; FRAME_SAMPLES];
    for _ in 0..2 {
        m.push(1, &loud);
        m.push(2, &loud);
        m.push(3, &[-30_000; FRAME_SAMPLES]);
    }
    let (heard, _) = tick(&mut m);
    assert!(heard[&3].iter().all(|&s| s == i16::MAX));
    assert!(heard[&1].iter().all(|&s| s == 0));
}

#[test]
fn past_top_k_talkers_only_the_loudest_are_mixed() {
    let mut m = Mixer::default();
    let n = TOP_K + 3;
    for k in 0..n {
        m.add(k, false);
    }
    m.add(100, false);
    for k in 0..n {
        m.push(k, &vec![(k as i16 + 1) * 100; 2 * FRAME_SAMPLES]);
    }
    let (heard, _) = tick(&mut m);
    // The listener who said nothing hears the TOP_K loudest: levels n, n-1, ... .
    let want: i32 = ((n - TOP_K + 1)..=n).map(|l| l as i32 * 100).sum();
    assert!(
        heard[&100].iter().all(|&s| i32::from(s) == want),
        "{:?}",
        &heard[&100][..4]
    );
    // The quietest hear the loudest K too, and their own voice was not in it anyway.
    assert!(heard[&0].iter().all(|&s| i32::from(s) == want));
    // One of the loudest hears the others of the K.
    assert!(
        heard[&(n - 1)]
            .iter()
            .all(|&s| i32::from(s) == want - n as i32 * 100)
    );
}

#[test]
fn any_packet_time_is_mixed_in_20_ms_frames_and_a_fast_sender_is_trimmed() {
    let mut m = Mixer::default();
    m.add(1, false);
    m.add(2, false);
    // 30 ms packets: 240 samples each. One is not enough to start (40 ms in hand).
    m.push(1, &[1000; 240]);
    let (heard, _) = tick(&mut m);
    assert!(heard[&2].iter().all(|&s| s == 0));
    m.push(1, &[1000; 240]);
    for _ in 0..3 {
        let (heard, _) = tick(&mut m);
        assert!(heard[&2].iter().all(|&s| s == 1000));
    }
    let (heard, _) = tick(&mut m);
    assert!(heard[&2].iter().all(|&s| s == 0));
    // A sender far ahead: its queue is cut to the target, the oldest go first.
    m.push(1, &[1; 1000]);
    m.push(1, &[2; 1000]);
    tick(&mut m);
    let mut left = 0;
    loop {
        let (heard, _) = tick(&mut m);
        if heard[&2].iter().all(|&s| s == 0) {
            break;
        }
        assert!(
            heard[&2].iter().all(|&s| s == 2 || s == 0),
            "old samples kept"
        );
        left += 1;
    }
    assert!(left <= FIFO_TARGET / FRAME_SAMPLES, "{left} frames queued");
}

#[test]
fn speakers_start_and_stop_with_hysteresis() {
    let mut m = Mixer::default();
    m.add(7, false);
    m.add(8, false);
    let mut changes = Vec::new();
    for i in 0..10 {
        m.push(7, &tone(300.0, 8000.0, i * FRAME_SAMPLES));
        changes.extend(tick(&mut m).1);
    }
    assert_eq!(
        changes,
        vec![SpeakerChange {
            key: 7,
            speaking: true
        }]
    );
    // A short pause is not the end of speech; a long one is.
    changes.clear();
    for _ in 0..10 {
        changes.extend(tick(&mut m).1);
    }
    assert!(changes.is_empty());
    for _ in 0..30 {
        changes.extend(tick(&mut m).1);
    }
    assert_eq!(
        changes,
        vec![SpeakerChange {
            key: 7,
            speaking: false
        }]
    );
}

#[test]
fn an_announcement_is_heard_by_everyone_once() {
    let mut m = Mixer::default();
    m.add(1, false);
    m.add(2, true);
    let beep: Arc<[i16]> = vec![500i16; FRAME_SAMPLES * 2].into();
    m.announce(beep);
    for _ in 0..2 {
        let (heard, _) = tick(&mut m);
        assert!(heard.values().all(|f| f.iter().all(|&s| s == 500)));
    }
    let (heard, _) = tick(&mut m);
    assert!(heard.values().all(|f| f.iter().all(|&s| s == 0)));
}

#[test]
fn leaving_and_joining_change_only_the_mix() {
    let mut m = Mixer::default();
    m.add(1, false);
    m.add(2, false);
    m.push(1, &[100; FRAME_SAMPLES]);
    m.push(2, &[200; FRAME_SAMPLES]);
    m.remove(2);
    assert!(!m.contains(2) && m.len() == 1);
    let (heard, _) = tick(&mut m);
    assert_eq!(heard.len(), 1);
    assert!(heard[&1].iter().all(|&s| s == 0));
}

#[test]
fn a_coach_is_heard_by_the_one_it_coaches_alone_and_hears_everyone() {
    let mut m = Mixer::default();
    for k in 1..=3 {
        m.add(k, false);
    }
    // 3 coaches 1 (an agent's supervisor whispering to the agent; 2 is the customer).
    m.set_coaching(3, Some(1));
    assert!(m.is_coach(3));
    let (a, b, c) = (
        tone(400.0, 5000.0, 0),
        tone(700.0, 5000.0, 0),
        tone(1100.0, 5000.0, 0),
    );
    for _ in 0..2 {
        m.push(1, &a);
        m.push(2, &b);
        m.push(3, &c);
    }
    let (heard, _) = tick(&mut m);
    assert_eq!(
        heard[&1],
        add(&b, &c),
        "the coached hears the customer and the coach"
    );
    assert_eq!(heard[&2], a, "the customer never hears the coach");
    assert_eq!(heard[&3], add(&a, &b), "the coach hears both");
    assert_eq!(
        m.mix(),
        &a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<_>>()[..]
    );
    // The coached one leaves: the coach is heard by nobody, even by one reusing the key.
    m.remove(1);
    assert!(m.is_coach(3));
    m.add(1, false);
    for _ in 0..2 {
        m.push(1, &a);
        m.push(2, &b);
        m.push(3, &c);
    }
    let (heard, _) = tick(&mut m);
    assert_eq!(heard[&1], b);
    assert_eq!(heard[&2], a);
    // Coaching ends: everyone hears the former coach.
    m.set_coaching(3, None);
    for _ in 0..2 {
        m.push(1, &a);
        m.push(2, &b);
        m.push(3, &c);
    }
    let (heard, _) = tick(&mut m);
    assert_eq!(heard[&1], add(&b, &c));
    assert_eq!(heard[&2], add(&a, &c));
}

#[test]
fn the_sample_fifo_keeps_the_newest_samples_in_order_across_the_wrap() {
    // Against a VecDeque model: pushes of every size (past the capacity too), pops and
    // trims, with the ring's head at every offset.
    let mut fifo = SampleFifo::default();
    let mut model = std::collections::VecDeque::new();
    let mut next = 0i16;
    let mut rng = 0x2545_f491_u32;
    for _ in 0..5000 {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        match rng % 4 {
            0 | 1 => {
                let n = (rng >> 8) as usize % (FIFO_SAMPLES + 400);
                let samples: Vec<i16> = (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect();
                fifo.push(&samples);
                model.extend(samples);
                while model.len() > FIFO_SAMPLES {
                    model.pop_front();
                }
            }
            2 => {
                let mut out = [7i16; FRAME_SAMPLES];
                let expect_real = model.len().min(FRAME_SAMPLES);
                let real = fifo.pop_frame(&mut out);
                let want: Vec<i16> = (0..FRAME_SAMPLES)
                    .map(|_| model.pop_front().unwrap_or(0))
                    .collect();
                assert_eq!(real, expect_real);
                assert_eq!(out.to_vec(), want);
            }
            _ => {
                let keep = (rng >> 8) as usize % FIFO_SAMPLES;
                fifo.trim_to(keep);
                while model.len() > keep {
                    model.pop_front();
                }
            }
        }
        assert_eq!(fifo.len(), model.len());
    }
}
