//! Property tests of the control frames, the channel's untrusted input: any byte
//! stream reads as messages, a clean end, or an error — never a panic or an
//! allocation past `MAX_FRAME` — and every message survives a round trip.
//!
//! Bounded for CI: proptest's default 256 cases (`PROPTEST_CASES` raises it).

use cast_proto::{
    read_frame, write_frame, ExitStatus, FrameError, GuestMsg, HostMsg, StartSpec, WinSize,
    MAX_FRAME,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("(?s).{0,40}").unwrap()
}

fn guest_msg() -> impl Strategy<Value = GuestMsg> {
    prop_oneof![
        any::<u32>().prop_map(|version| GuestMsg::Hello { version }),
        (
            prop_oneof![
                any::<i32>().prop_map(ExitStatus::Code),
                any::<i32>().prop_map(ExitStatus::Signal)
            ],
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(text()),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(
                |(status, stdout_bytes, stderr_bytes, message, layer_bytes)| GuestMsg::Exit {
                    status,
                    stdout_bytes,
                    stderr_bytes,
                    message,
                    layer_bytes,
                },
            ),
        text().prop_map(|message| GuestMsg::Error { message }),
        text().prop_map(|message| GuestMsg::Log { message }),
    ]
}

fn host_msg() -> impl Strategy<Value = HostMsg> {
    let winsize = (any::<u16>(), any::<u16>()).prop_map(|(rows, cols)| WinSize { rows, cols });
    prop_oneof![
        (
            proptest::collection::vec(text(), 0..4),
            proptest::collection::vec(text(), 0..4),
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(winsize.clone()),
            text(),
        )
            .prop_map(|(argv, env, workdir, tty, winsize, hostname)| {
                HostMsg::Start(Box::new(StartSpec {
                    argv,
                    env,
                    workdir,
                    user: None,
                    tty,
                    winsize,
                    hostname,
                    ..Default::default()
                }))
            }),
        any::<u64>().prop_map(|bytes| HostMsg::StdinEof { bytes }),
        any::<i32>().prop_map(|signal| HostMsg::Signal { signal }),
        winsize.prop_map(HostMsg::Resize),
        Just(HostMsg::CloseStdout),
        Just(HostMsg::Ack),
    ]
}

/// Reads frames until the end or an error; the messages read.
fn read_all(mut bytes: &[u8]) -> (Vec<GuestMsg>, Option<FrameError>) {
    let mut msgs = Vec::new();
    loop {
        match read_frame::<_, GuestMsg>(&mut bytes) {
            Ok(Some(m)) => msgs.push(m),
            Ok(None) => return (msgs, None),
            Err(e) => return (msgs, Some(e)),
        }
    }
}

proptest! {
    #[test]
    fn messages_round_trip_in_sequence(
        guest in proptest::collection::vec(guest_msg(), 0..6),
        host in proptest::collection::vec(host_msg(), 0..6),
    ) {
        let mut buf = Vec::new();
        for m in &guest {
            write_frame(&mut buf, m).unwrap();
        }
        let (read, err) = read_all(&buf);
        prop_assert!(err.is_none());
        prop_assert_eq!(read, guest);
        let mut buf = Vec::new();
        for m in &host {
            write_frame(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &host {
            let got = read_frame::<_, HostMsg>(&mut r).unwrap();
            prop_assert_eq!(got.as_ref(), Some(m));
        }
        prop_assert!(read_frame::<_, HostMsg>(&mut r).unwrap().is_none());
    }

    #[test]
    fn any_bytes_read_as_messages_an_end_or_an_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (msgs, _) = read_all(&bytes);
        // Whatever was accepted is a real message: it re-encodes and reads back.
        for m in msgs {
            let mut again = Vec::new();
            write_frame(&mut again, &m).unwrap();
            prop_assert_eq!(read_frame::<_, GuestMsg>(&mut &again[..]).unwrap(), Some(m));
        }
    }

    #[test]
    fn a_cut_stream_keeps_the_whole_frames_and_reports_the_cut(
        msgs in proptest::collection::vec(guest_msg(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).unwrap();
            ends.push(buf.len());
        }
        let at = cut.index(buf.len());
        let whole = ends.iter().filter(|e| **e <= at).count();
        let (read, err) = read_all(&buf[..at]);
        prop_assert_eq!(&read[..], &msgs[..whole]);
        let on_boundary = at == 0 || ends.contains(&at);
        prop_assert_eq!(err.is_none(), on_boundary, "{:?}", err);
        if let Some(e) = err {
            prop_assert!(matches!(e, FrameError::Truncated), "{e:?}");
        }
    }

    #[test]
    fn a_length_past_the_limit_is_refused_before_reading_the_body(
        len in (MAX_FRAME as u32 + 1)..=u32::MAX,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend(tail);
        let err = read_frame::<_, GuestMsg>(&mut &bytes[..]).unwrap_err();
        prop_assert!(matches!(err, FrameError::TooLarge(n) if n == len as usize), "{err:?}");
    }
}
