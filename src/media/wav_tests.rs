//! Tests of the WAV reader and writer.

use super::*;
use crate::media::g711::{alaw_encode, ulaw_encode};

const CAP: usize = 1 << 20;

/// A `fmt ` body: tag, channels, rate, bits (block align and byte rate derived).
fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let block = channels * bits / 8;
    let mut b = Vec::new();
    b.extend_from_slice(&tag.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    b.extend_from_slice(&block.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b
}

/// A RIFF/WAVE file from chunks, each padded to even length as RIFF requires.
fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    for (id, data) in chunks {
        body.extend_from_slice(*id);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn sine(freq: f64, rate: f64, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16)
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

#[test]
fn pcm16_8k_mono() {
    let samples: Vec<i16> = (0..400).map(|i| (i * 37 - 7000) as i16).collect();
    let file = riff(&[
        (b"fmt ", &fmt_body(1, 1, 8000, 16)),
        (b"data", &pcm_bytes(&samples)),
    ]);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(
        wav.format(),
        WavFormat {
            encoding: WavEncoding::Pcm16,
            sample_rate: 8000,
            channels: 1
        }
    );
    assert_eq!(wav.frames(), 400);
    assert_eq!(wav.duration_ms(), 50);
    assert_eq!(wav.to_pcm_8k(), samples);

    let frames = wav.to_g711_frames(G711Law::Pcmu);
    assert_eq!(frames.len(), 3, "400 samples = 2 full frames + 80");
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(frames[i / 160][i % 160], ulaw_encode(s));
    }
    assert!(
        frames[2][80..].iter().all(|&c| c == 0xFF),
        "padded with μ-law silence"
    );
    let frames = wav.to_g711_frames(G711Law::Pcma);
    assert!(
        frames[2][80..].iter().all(|&c| c == 0xD5),
        "padded with A-law silence"
    );
    assert_eq!(frames[1][5], alaw_encode(samples[165]));
}

#[test]
fn skips_list_and_odd_sized_chunks_with_padding() {
    let samples = [1i16, -2, 300, -400, 5000];
    // An odd-sized LIST before fmt, an odd-sized unknown chunk between fmt and data,
    // and a LIST after data that is even truncated: none of them matter.
    let list = b"INFOISFT\x05\x00\x00\x00Lavf\x00"; // 17 bytes: odd, padded
    let mut file = riff(&[
        (b"LIST", list),
        (b"fmt ", &fmt_body(1, 1, 8000, 16)),
        (b"junk", b"abc"),
        (b"data", &pcm_bytes(&samples)),
    ]);
    file.extend_from_slice(b"LIST\xff\x00\x00\x00INFO");
    let riff_size = (file.len() - 8) as u32;
    file[4..8].copy_from_slice(&riff_size.to_le_bytes());
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(wav.to_pcm_8k(), samples);
}

#[test]
fn data_before_fmt_is_fine() {
    let file = riff(&[
        (b"data", &pcm_bytes(&[7, 8, 9])),
        (b"fmt ", &fmt_body(1, 1, 8000, 16)),
    ]);
    assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [7, 8, 9]);
}

#[test]
fn mulaw_and_alaw_files() {
    let codes: Vec<u8> = (0..=255).collect();
    let file = riff(&[(b"fmt ", &fmt_body(7, 1, 8000, 8)), (b"data", &codes)]);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(wav.format().encoding, WavEncoding::G711(G711Law::Pcmu));
    let pcm = wav.to_pcm_8k();
    for (i, &c) in codes.iter().enumerate() {
        assert_eq!(pcm[i], ulaw_decode(c));
    }
    // Same law: byte for byte. Other law: the direct table.
    let frames = wav.to_g711_frames(G711Law::Pcmu);
    assert_eq!(frames.len(), 2);
    assert_eq!(&frames[0][..], &codes[..160]);
    assert_eq!(&frames[1][..96], &codes[160..]);
    assert!(frames[1][96..].iter().all(|&c| c == 0xFF));
    let frames = wav.to_g711_frames(G711Law::Pcma);
    assert_eq!(frames[0][10], ulaw_to_alaw(codes[10]));

    let file = riff(&[(b"fmt ", &fmt_body(6, 1, 8000, 8)), (b"data", &codes)]);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(wav.format().encoding, WavEncoding::G711(G711Law::Pcma));
    assert_eq!(wav.to_pcm_8k()[200], alaw_decode(200));
    assert_eq!(&wav.to_g711_frames(G711Law::Pcma)[0][..], &codes[..160]);
    assert_eq!(wav.to_g711_frames(G711Law::Pcmu)[1][3], alaw_to_ulaw(163));
}

#[test]
fn extensible_pcm_is_accepted_and_other_subformats_are_not() {
    let mut body = fmt_body(WAVE_FORMAT_EXTENSIBLE, 1, 8000, 16);
    body.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    body.extend_from_slice(&16u16.to_le_bytes()); // valid bits
    body.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
    body.extend_from_slice(&1u32.to_le_bytes()); // KSDATAFORMAT_SUBTYPE_PCM
    body.extend_from_slice(&KSDATAFORMAT_GUID_TAIL);
    let file = riff(&[(b"fmt ", &body), (b"data", &pcm_bytes(&[42, -42]))]);
    assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [42, -42]);

    body[24] = 3; // KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
    let file = riff(&[(b"fmt ", &body), (b"data", &[0; 4])]);
    assert_eq!(
        Wav::parse(&file, CAP),
        Err(WavError::UnsupportedFormatTag(3))
    );
    let short = &body[..30];
    let file = riff(&[(b"fmt ", short), (b"data", &[0; 4])]);
    assert_eq!(Wav::parse(&file, CAP), Err(WavError::FmtTooShort(30)));
}

#[test]
fn stereo_is_downmixed_by_averaging() {
    let frames: Vec<i16> = [1000i16, 3000, -32768, -32768, 32767, 32767, 101, -100].to_vec();
    let file = riff(&[
        (b"fmt ", &fmt_body(1, 2, 8000, 16)),
        (b"data", &pcm_bytes(&frames)),
    ]);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(wav.frames(), 4);
    assert_eq!(wav.to_pcm_8k(), [2000, -32768, 32767, 0]);

    let file = riff(&[
        (b"fmt ", &fmt_body(7, 2, 8000, 8)),
        (b"data", &[0x80, 0x00]),
    ]);
    assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [0]);
}

#[test]
fn sixteen_khz_is_low_passed_and_decimated() {
    // A 1 kHz tone passes at the same level (passband ripple 0.02 dB) and phase...
    let input = sine(1000.0, 16000.0, 10000.0, 1600);
    let file = riff(&[
        (b"fmt ", &fmt_body(1, 1, 16000, 16)),
        (b"data", &pcm_bytes(&input)),
    ]);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(wav.duration_ms(), 100);
    let out = wav.to_pcm_8k();
    assert_eq!(out.len(), 800);
    let want = sine(1000.0, 8000.0, 10000.0, 800);
    // Away from the edges (the filter reaches 11 input samples either side).
    for i in 8..792 {
        assert!(
            (i32::from(out[i]) - i32::from(want[i])).abs() <= 30,
            "sample {i}: {} vs {}",
            out[i],
            want[i]
        );
    }
    // ...and a 6 kHz tone, which would alias to 2 kHz, is gone (filter: −50 dB).
    let input = sine(6000.0, 16000.0, 10000.0, 1600);
    let file = riff(&[
        (b"fmt ", &fmt_body(1, 1, 16000, 16)),
        (b"data", &pcm_bytes(&input)),
    ]);
    let out = Wav::parse(&file, CAP).unwrap().to_pcm_8k();
    assert!(
        rms(&out[8..792]) < rms(&input) / 100.0,
        "{}",
        rms(&out[8..792])
    );
    // Full-scale input cannot wrap around.
    let square: Vec<i16> = (0..64)
        .map(|i| if i % 8 < 4 { 32767 } else { -32768 })
        .collect();
    let out = decimate_16k_to_8k(&square);
    assert_eq!(out.len(), 32);
    assert!(out[4..28].iter().any(|&s| s == i16::MAX || s == i16::MIN));
}

#[test]
fn precise_errors() {
    let fmt = fmt_body(1, 1, 8000, 16);
    let data = pcm_bytes(&[0; 8]);
    let err = |file: &[u8]| Wav::parse(file, CAP).unwrap_err();

    assert_eq!(
        err(b"OggS\0\0\0\0WAVE"),
        WavError::NotRiff {
            found: ChunkId(*b"OggS")
        }
    );
    assert_eq!(
        err(b"RI"),
        WavError::NotRiff {
            found: ChunkId(*b"RI\0\0")
        }
    );
    assert_eq!(
        err(b"RIFF\x04\0\0\0AVI "),
        WavError::NotWave {
            found: ChunkId(*b"AVI ")
        }
    );
    assert_eq!(
        err(b"RIFF\x04\0\0\0WA"),
        WavError::TruncatedHeader { offset: 0 }
    );
    let mp3 = riff(&[(b"fmt ", &fmt_body(85, 1, 8000, 0)), (b"data", &data)]);
    assert_eq!(err(&mp3), WavError::UnsupportedFormatTag(85));
    assert_eq!(err(&mp3).to_string(), "unsupported format tag 85");
    let float = riff(&[(b"fmt ", &fmt_body(3, 1, 8000, 32)), (b"data", &data)]);
    assert_eq!(err(&float), WavError::UnsupportedFormatTag(3));
    let pcm8 = riff(&[(b"fmt ", &fmt_body(1, 1, 8000, 8)), (b"data", &data)]);
    assert_eq!(
        err(&pcm8),
        WavError::UnsupportedBitsPerSample {
            format_tag: 1,
            bits: 8
        }
    );
    let too_fast = riff(&[(b"fmt ", &fmt_body(1, 1, 96000, 16)), (b"data", &data)]);
    assert_eq!(
        err(&too_fast),
        WavError::UnsupportedSampleRate {
            format_tag: 1,
            rate: 96000
        }
    );
    let too_slow = riff(&[(b"fmt ", &fmt_body(1, 1, 4000, 16)), (b"data", &data)]);
    assert!(matches!(
        err(&too_slow),
        WavError::UnsupportedSampleRate { rate: 4000, .. }
    ));
    let ulaw16k = riff(&[(b"fmt ", &fmt_body(7, 1, 16000, 8)), (b"data", &data)]);
    assert_eq!(
        err(&ulaw16k),
        WavError::UnsupportedSampleRate {
            format_tag: 7,
            rate: 16000
        }
    );
    let surround = riff(&[(b"fmt ", &fmt_body(1, 6, 8000, 16)), (b"data", &data)]);
    assert_eq!(err(&surround), WavError::UnsupportedChannels(6));
    let mut bad_align = fmt.clone();
    bad_align[12] = 4;
    let file = riff(&[(b"fmt ", &bad_align), (b"data", &data)]);
    assert_eq!(
        err(&file),
        WavError::BadBlockAlign {
            expected: 2,
            found: 4
        }
    );
    let file = riff(&[(b"fmt ", &fmt[..14]), (b"data", &data)]);
    assert_eq!(err(&file), WavError::FmtTooShort(14));
    assert_eq!(err(&riff(&[(b"fmt ", &fmt)])), WavError::MissingData);
    assert_eq!(err(&riff(&[(b"data", &data)])), WavError::MissingFmt);
    assert_eq!(err(&riff(&[])), WavError::MissingFmt);

    let good = riff(&[(b"fmt ", &fmt), (b"data", &data)]);
    assert_eq!(
        Wav::parse(&good, good.len() - 1),
        Err(WavError::TooLarge {
            len: good.len(),
            max: good.len() - 1
        })
    );
    assert_eq!(err(&mp3).class(), "unsupported_format");
}

#[test]
fn truncated_files() {
    let samples: Vec<i16> = (0..100).collect();
    let good = riff(&[
        (b"fmt ", &fmt_body(1, 1, 8000, 16)),
        (b"data", &pcm_bytes(&samples)),
    ]);
    // A download cut in the middle of the data chunk: 44-byte header + 200 bytes.
    let cut = &good[..44 + 150];
    assert_eq!(
        Wav::parse(cut, CAP),
        Err(WavError::TruncatedChunk {
            chunk: ChunkId::DATA,
            offset: 36,
            declared: 200,
            available: 150
        })
    );
    assert_eq!(
        Wav::parse(cut, CAP).unwrap_err().to_string(),
        "truncated \"data\" chunk at offset 36: declares 200 bytes, 150 present"
    );
    // Cut inside the fmt chunk, and inside the data chunk header.
    assert!(matches!(
        Wav::parse(&good[..30], CAP),
        Err(WavError::TruncatedChunk {
            chunk: ChunkId::FMT,
            offset: 12,
            declared: 16,
            available: 10
        })
    ));
    assert_eq!(
        Wav::parse(&good[..40], CAP),
        Err(WavError::TruncatedHeader { offset: 36 })
    );
    // Every prefix is refused, none panics, and all refusals are "truncated" (or the
    // missing chunk when the cut falls exactly between chunks).
    for len in 0..good.len() {
        let e = Wav::parse(&good[..len], CAP).unwrap_err();
        assert!(
            matches!(e.class(), "truncated" | "not_riff" | "missing_chunk"),
            "{len}: {e}"
        );
    }
    // A RIFF size that overstates the file is tolerated when the chunks fit.
    let mut stale = good.clone();
    stale[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Wav::parse(&stale, CAP).unwrap().to_pcm_8k(), samples);
    // A data chunk size of 0xFFFFFFFF (a streaming writer that never patched it).
    let mut unpatched = good.clone();
    unpatched[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Wav::parse(&unpatched, CAP),
        Err(WavError::TruncatedChunk {
            chunk: ChunkId::DATA,
            ..
        })
    ));
}

#[test]
fn recording_header_layout() {
    let h = recording_header(16000);
    let want: [u8; 44] = [
        b'R', b'I', b'F', b'F', 0xA4, 0x3E, 0x00, 0x00, // 36 + 16000
        b'W', b'A', b'V', b'E', b'f', b'm', b't', b' ', //
        16, 0, 0, 0, 1, 0, 1, 0, // fmt size 16, PCM, mono
        0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, // 8000 Hz, 16000 bytes/s
        2, 0, 16, 0, b'd', b'a', b't', b'a', // block align 2, 16 bits
        0x80, 0x3E, 0, 0, // 16000 data bytes
    ];
    assert_eq!(h, want);
}

#[test]
fn writer_round_trips_through_the_parser() {
    let samples: Vec<i16> = (0..2000)
        .map(|i| ((i * 7919) % 65536 - 32768) as i16)
        .collect();
    let file = write_recording(&samples);
    assert_eq!(file.len(), 44 + 4000);
    let wav = Wav::parse(&file, CAP).unwrap();
    assert_eq!(
        wav.format(),
        WavFormat {
            encoding: WavEncoding::Pcm16,
            sample_rate: 8000,
            channels: 1
        }
    );
    assert_eq!(wav.to_pcm_8k(), samples);
    assert_eq!(wav.duration_ms(), 250);
    // An empty recording is still a valid file.
    let empty = write_recording(&[]);
    assert_eq!(Wav::parse(&empty, CAP).unwrap().frames(), 0);
}

#[test]
fn incremental_recording_is_valid_after_patching() {
    let samples: Vec<i16> = (0..1000).map(|i| (i * 13) as i16).collect();
    // What a recorder does: placeholder header, append per packet, patch at the end.
    let mut file = recording_header(0).to_vec();
    let mut buf = [0u8; 2 * FRAME_SAMPLES];
    for packet in samples.chunks(FRAME_SAMPLES) {
        let n = pcm16_le(packet, &mut buf);
        file.extend_from_slice(&buf[..n]);
    }
    // Before patching the placeholder parses as an empty recording.
    assert_eq!(Wav::parse(&file, CAP).unwrap().frames(), 0);
    let written = (file.len() - RECORDING_HEADER_LEN) as u32;
    for (offset, bytes) in recording_size_patches(written) {
        let at = offset as usize;
        file[at..at + 4].copy_from_slice(&bytes);
    }
    assert_eq!(file, write_recording(&samples));

    // Crash recovery: sizes recomputed from the file length alone.
    let mut crashed = recording_header(0).to_vec();
    crashed.extend_from_slice(&file[RECORDING_HEADER_LEN..]);
    crashed.push(0x12); // half a sample written when it died
    let n = recovered_data_bytes(crashed.len() as u64);
    assert_eq!(n, 2000);
    assert!(patch_recording_sizes(&mut crashed, n));
    assert_eq!(Wav::parse(&crashed, CAP).unwrap().to_pcm_8k(), samples);
    assert!(!patch_recording_sizes(&mut [0u8; 10], 0));
    assert_eq!(recovered_data_bytes(3), 0);
}

#[test]
fn pcm16_le_is_bounded_by_the_output() {
    let mut out = [0u8; 5];
    assert_eq!(pcm16_le(&[0x0102, -2, 7], &mut out), 4);
    assert_eq!(out, [0x02, 0x01, 0xFE, 0xFF, 0]);
}

#[test]
fn chunk_ids_display_escaped() {
    assert_eq!(ChunkId(*b"fmt ").to_string(), "fmt ");
    assert_eq!(
        ChunkId([b'd', 0, 0xFF, b'\n']).to_string(),
        "d\\x00\\xff\\x0a"
    );
}

/// PCM at CD rate (and espeak-ng's 22,050 Hz) is taken and resampled to 8 kHz once.
#[test]
fn pcm_at_other_rates_is_resampled_to_8k() {
    for rate in [22_050u32, 44_100] {
        let samples: Vec<u8> = (0..rate / 2)
            .flat_map(|n| {
                let v = (8000.0
                    * (2.0 * std::f64::consts::PI * 500.0 * f64::from(n) / f64::from(rate)).sin())
                    as i16;
                v.to_le_bytes()
            })
            .collect();
        let file = riff(&[(b"fmt ", &fmt_body(1, 1, rate, 16)), (b"data", &samples)]);
        let wav = Wav::parse(&file, 1 << 20).unwrap();
        assert_eq!(wav.format().sample_rate, rate);
        assert_eq!(wav.duration_ms(), 500);
        let pcm = wav.to_pcm_8k();
        assert!(
            (3_990..=4_010).contains(&pcm.len()),
            "{rate}: {}",
            pcm.len()
        );
        // 500 Hz: 1,000 zero crossings a second, 500 in half a second.
        let crossings = pcm[200..3800]
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        assert!(
            (440..=460).contains(&crossings),
            "{rate}: {crossings} crossings in 0.45 s"
        );
    }
}
