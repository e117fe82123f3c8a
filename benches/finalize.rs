//! Server-side time to acknowledge a meeting finalize (PROTOCOL.md §3.3: the
//! ack goes out ≤ 100 ms; our target p99 ≤ 5 ms): the connection thread's
//! whole handling of `{"type":"meeting","phase":"finalize"}` for a running
//! meeting of 200 segments — state change, ack, timers, and handing the
//! summary job to the pool — with the pool and archive really running.
//! Run: `cargo bench --bench finalize`; it prints p50/p99/max over all samples.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use huddle::config::{ConfigStore, parse_toml};
use huddle::modes::meeting::state::Meeting;
use huddle::net::identity::DeviceIdentity;
use huddle::protocol::FramingVersion;
use huddle::server::{ServerOptions, start};
use huddle::session::{Outbox, Session};

fn finalize_ack(c: &mut Criterion) {
    let data = std::env::temp_dir().join(format!("huddle-bench-finalize-{}", std::process::id()));
    let config = parse_toml(&format!(
        "[server]\nip = \"127.0.0.1\"\nport = 8000\n[storage]\ndata_dir = \"{}\"\n[selected_module]\nasr = \"none\"\n[log]\nlevel = \"off\"\n",
        data.display()
    ))
    .expect("config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let store = Arc::new(ConfigStore::new(config, None));
    let server = start(
        Arc::clone(&store),
        ServerOptions {
            device_listener: Some(listener),
            ..ServerOptions::default()
        },
    )
    .expect("server");
    let ctx = Arc::clone(server.context());
    let samples = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let recorded = Arc::clone(&samples);
    c.bench_function("meeting_finalize_ack_200_segments", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for i in 0..iterations {
                let identity = DeviceIdentity {
                    device_id: format!("bench:{i}"),
                    client_id: "bench".into(),
                    generated: false,
                };
                let mut session = Session::new(identity, FramingVersion::V3, store.current(), 0);
                session.meeting =
                    Meeting::start(uuid::Uuid::new_v4().to_string(), 1_700_000_000_000);
                for n in 0..200 {
                    session.meeting.accept(
                        format!("segment {n}"),
                        None,
                        None,
                        1_700_000_000_000 + n,
                    );
                }
                let mut out = Outbox::default();
                let started = Instant::now();
                session.on_text(
                    r#"{"type":"meeting","phase":"finalize"}"#,
                    &ctx,
                    1,
                    &mut out,
                );
                let took = started.elapsed();
                assert!(!out.frames.is_empty(), "no ack");
                total += took;
                recorded.lock().unwrap().push(took);
            }
            total
        })
    });
    let mut all = samples.lock().unwrap().clone();
    all.sort();
    if !all.is_empty() {
        let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        println!(
            "finalize ack over {} samples: p50 {:?}, p99 {:?}, max {:?}",
            all.len(),
            at(0.50),
            at(0.99),
            all[all.len() - 1]
        );
    }
    let _ = server.shutdown();
    let _ = std::fs::remove_dir_all(&data);
}

criterion_group!(benches, finalize_ack);
criterion_main!(benches);
