//! Integration tests for `huddle::store` on real temp directories: atomic
//! writes, the sharded and array layouts, transcript paging, index retention,
//! the metrics log, the recent filters, id validation, and the journal writer
//! with crash recovery and the resume rule (PROTOCOL.md §4, §5.2).

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::temp::TempDir;
use huddle::store::journal::{
    JournalWriter, RecoveredJournal, read_journal, resume_candidate, scan_journals,
};
use huddle::store::meetings::{MeetingStore, rfc3339_utc_seconds};
use huddle::store::model::{JournalRecord, MeetingMetrics, MeetingRecord, Segment, Summary};
use huddle::store::write_atomic;
use serde_json::Value;

const DEVICE: &str = "94:a9:90:07:9d:88";
const FLUSH: Duration = Duration::from_secs(5);

fn segments(n: usize) -> Vec<Segment> {
    (0..n)
        .map(|i| Segment {
            ts: 1_755_480_000_000 + i as u64,
            text: format!("segment {i}"),
            speaker_id: (i % 2 == 0).then(|| "spk-1".to_owned()),
            tag: (i % 3 == 0).then(|| "需求".to_owned()),
        })
        .collect()
}

fn record(sid: &str, device: &str, ended_at: u64, n: usize) -> MeetingRecord {
    MeetingRecord {
        session_id: sid.into(),
        device_id: device.into(),
        started_at: ended_at - 60_000,
        ended_at,
        duration_ms: 60_000,
        summary: Summary {
            title: format!("title {sid}"),
            duration: "00:01:00".into(),
            bullets: vec!["b".into()],
            ..Summary::default()
        },
        segments: segments(n),
        bullets_length: 1,
        source_segments: n as u64,
        metrics: MeetingMetrics {
            segments_count: n as u64,
            checkpoint_count: 0,
            llm_elapsed_ms: 10,
            empty_bullets: false,
            bullets_length: 1,
            industry: None,
            scenario: None,
        },
        recovered: false,
    }
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn file_names(dir: &Path) -> HashSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn texts(items: &[Segment]) -> Vec<String> {
    items.iter().map(|s| s.text.clone()).collect()
}

#[test]
fn atomic_write_leaves_no_temp_and_leftovers_are_cleaned_on_open() {
    let tmp = TempDir::new();
    let meetings = tmp.0.join("meetings");
    fs::create_dir_all(meetings.join("segments")).unwrap();
    fs::write(meetings.join("index.json"), br#"{"items":[]}"#).unwrap();
    fs::write(meetings.join("index.json.tmp-deadbeef"), b"{\"ite").unwrap();
    fs::write(meetings.join("segments").join("x_shard_0.json.tmp-1"), b"").unwrap();

    let store = MeetingStore::open(&tmp.0).unwrap();
    assert_eq!(
        file_names(&meetings),
        HashSet::from(["index.json".into(), "segments".into(), "active".into()])
    );
    assert!(file_names(&meetings.join("segments")).is_empty());

    let target = meetings.join("a.json");
    write_atomic(&target, b"{\"v\":1}").unwrap();
    write_atomic(&target, b"{\"v\":2}").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"{\"v\":2}");
    assert!(file_names(&meetings).iter().all(|n| !n.contains(".tmp-")));

    store.save(&record("m1", DEVICE, 2_000_000, 120)).unwrap();
    for dir in [meetings.clone(), meetings.join("segments")] {
        assert!(
            file_names(&dir).iter().all(|n| !n.contains(".tmp-")),
            "{dir:?}"
        );
    }
}

#[test]
fn sharded_meeting_pages_across_shards() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let sid = "3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c";
    let rec = record(sid, DEVICE, 1_755_482_520_000, 230);
    let entry = store.save(&rec).unwrap();
    assert_eq!((entry.segments_count, entry.shard_count), (230, 3));

    let seg_dir = tmp.0.join("meetings/segments");
    for (k, len) in [(0u64, 100usize), (1, 100), (2, 30)] {
        let shard = json(&seg_dir.join(format!("{sid}_shard_{k}.json")));
        assert_eq!(shard["sessionId"], sid);
        assert_eq!(shard["shard"], k);
        assert_eq!(shard["offset"], 100 * k);
        assert_eq!(shard["items"].as_array().unwrap().len(), len);
        assert_eq!(shard["items"][0]["text"], format!("segment {}", 100 * k));
    }
    assert!(!seg_dir.join(format!("{sid}_shard_3.json")).exists());

    let main = json(&tmp.0.join(format!("meetings/{sid}.json")));
    assert_eq!(main["segments"]["preview"], true);
    assert_eq!(main["segments"]["totalCount"], 230);
    assert_eq!(main["segments"]["shardCount"], 3);
    assert_eq!(main["segments"]["items"].as_array().unwrap().len(), 50);
    assert_eq!(main["segments"]["items"][49]["text"], "segment 49");
    assert_eq!(main["summary"]["title"], format!("title {sid}"));
    assert_eq!(main["metrics"]["segmentsCount"], 230);
    assert!(main.get("recovered").is_none());

    let loaded = store.load(sid).unwrap().unwrap();
    assert_eq!(loaded.segments_count, 230);
    assert_eq!(loaded.shard_count, 3);
    assert!(loaded.has_shards);
    assert_eq!(loaded.summary, rec.summary);
    assert_eq!(loaded.metrics, rec.metrics);
    assert_eq!(texts(loaded.preview(5)), texts(&rec.segments[..5]));

    let page = |offset, limit| store.transcript(sid, offset, limit).unwrap().unwrap();
    let (items, total) = page(0, 100);
    assert_eq!((items.len(), total), (100, 230));
    assert_eq!(items, rec.segments[..100]);
    let (items, total) = page(95, 10);
    assert_eq!((items.len(), total), (10, 230));
    assert_eq!(items, rec.segments[95..105]);
    let (items, _) = page(50, 500);
    assert_eq!(items, rec.segments[50..]);
    let (items, total) = page(200, 100);
    assert_eq!((items.len(), total), (30, 230));
    assert_eq!(items, rec.segments[200..]);
    let (items, total) = page(500, 100);
    assert_eq!((items.len(), total), (0, 230));
    let (items, total) = page(230, 1);
    assert_eq!((items.len(), total), (0, 230));

    assert_eq!(store.load_record(sid).unwrap().unwrap(), rec);
    assert!(store.transcript("unknown", 0, 10).unwrap().is_none());
}

#[test]
fn small_meeting_uses_the_array_layout() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let rec = record("small", DEVICE, 1_000_000, 10);
    let entry = store.save(&rec).unwrap();
    assert_eq!((entry.segments_count, entry.shard_count), (10, 0));

    let main = json(&tmp.0.join("meetings/small.json"));
    assert_eq!(main["segments"].as_array().unwrap().len(), 10);
    assert_eq!(main["segments"][0]["speakerId"], "spk-1");
    assert_eq!(main["segments"][0]["tag"], "需求");
    assert!(main["segments"][1].get("tag").is_none());
    assert!(file_names(&tmp.0.join("meetings/segments")).is_empty());

    let loaded = store.load("small").unwrap().unwrap();
    assert!(!loaded.has_shards);
    assert_eq!(loaded.segments_count, 10);
    assert_eq!(loaded.main_segments, rec.segments);
    let (items, total) = store.transcript("small", 5, 100).unwrap().unwrap();
    assert_eq!((items.len(), total), (5, 10));
    assert_eq!(items, rec.segments[5..]);
    assert_eq!(
        store.transcript("small", 11, 5).unwrap().unwrap(),
        (vec![], 10)
    );
    assert_eq!(store.load_record("small").unwrap().unwrap(), rec);

    let mut recovered = record("rec", DEVICE, 1_000_001, 0);
    recovered.recovered = true;
    store.save(&recovered).unwrap();
    assert_eq!(json(&tmp.0.join("meetings/rec.json"))["recovered"], true);
    assert!(store.load("rec").unwrap().unwrap().recovered);

    // The index entry as the contract spells it.
    let index = json(&tmp.0.join("meetings/index.json"));
    let first = &index["items"][1];
    assert_eq!(first["sessionId"], "small");
    assert_eq!(first["deviceId"], DEVICE);
    assert_eq!(first["title"], "title small");
    assert_eq!(first["segmentsCount"], 10);
    assert_eq!(first["shardCount"], 0);
    assert_eq!(first["durationMs"], 60_000);
    assert_eq!(first["bulletsLength"], 1);
}

#[test]
fn retention_keeps_the_newest_100_and_leaves_active_alone() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let active = store.active_dir().to_path_buf();
    fs::write(active.join("live.jsonl"), b"{}\n").unwrap();
    fs::write(active.join("m0.jsonl"), b"{}\n").unwrap();

    // Saved out of endedAt order, every 10th one sharded.
    let n = 150;
    for i in 0..n {
        let j = (i * 7) % n; // a permutation of 0..150
        let segs = if j % 10 == 0 { 120 } else { 3 };
        store
            .save(&record(
                &format!("m{j}"),
                DEVICE,
                10_000_000 + j as u64 * 1000,
                segs,
            ))
            .unwrap();
    }

    let index = json(&tmp.0.join("meetings/index.json"));
    let ids: Vec<String> = index["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sessionId"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (50..n).rev().map(|j| format!("m{j}")).collect();
    assert_eq!(ids, expected);

    let mut main_files: Vec<String> = file_names(&tmp.0.join("meetings"))
        .into_iter()
        .filter(|n| n.ends_with(".json") && n != "index.json")
        .collect();
    main_files.sort();
    let mut expected_files: Vec<String> = (50..n).map(|j| format!("m{j}.json")).collect();
    expected_files.sort();
    assert_eq!(main_files, expected_files);

    let shards = file_names(&tmp.0.join("meetings/segments"));
    let expected_shards: HashSet<String> = (50..n)
        .filter(|j| j % 10 == 0)
        .flat_map(|j| [format!("m{j}_shard_0.json"), format!("m{j}_shard_1.json")])
        .collect();
    assert_eq!(shards, expected_shards);

    assert_eq!(
        file_names(&active),
        HashSet::from(["live.jsonl".into(), "m0.jsonl".into()])
    );
    assert!(store.load("m0").unwrap().is_none());
    assert!(store.load("m149").unwrap().is_some());
    let metrics = fs::read_to_string(tmp.0.join("meetings/metrics.log")).unwrap();
    assert_eq!(metrics.lines().count(), n);
}

#[test]
fn concurrent_saves_lose_no_index_entry() {
    let tmp = TempDir::new();
    let store = std::sync::Arc::new(MeetingStore::open(&tmp.0).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..10 {
                    let sid = format!("t{t}-{i}");
                    store
                        .save(&record(&sid, DEVICE, 5_000_000 + (t * 10 + i) as u64, 2))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.recent(100, None, None, None).unwrap().len(), 40);
    assert_eq!(store.stored_session_ids().len(), 40);
}

#[test]
fn metrics_log_has_one_exact_line_per_save() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let mut a = record(
        "3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c",
        DEVICE,
        1_755_484_920_000,
        58,
    );
    a.metrics = MeetingMetrics {
        segments_count: 58,
        checkpoint_count: 4,
        llm_elapsed_ms: 2870,
        empty_bullets: false,
        bullets_length: 5,
        industry: Some("tech".into()),
        scenario: Some("standup".into()),
    };
    let mut b = record("b", DEVICE, 1_755_484_921_999, 0);
    b.metrics.empty_bullets = true;
    b.metrics.bullets_length = 0;
    store.save(&a).unwrap();
    store.save(&b).unwrap();

    let log = fs::read_to_string(tmp.0.join("meetings/metrics.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "2025-08-18T02:42:00Z [Meeting Metrics] sessionId=3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c, segmentsCount=58, checkpointCount=4, llmElapsedMs=2870, emptyBullets=false, bulletsLength=5, industry=tech, scenario=standup",
            "2025-08-18T02:42:01Z [Meeting Metrics] sessionId=b, segmentsCount=0, checkpointCount=0, llmElapsedMs=10, emptyBullets=true, bulletsLength=0, industry=, scenario=",
        ]
    );
    assert!(log.ends_with('\n'));
    assert_eq!(
        rfc3339_utc_seconds(1_755_482_520_000),
        "2025-08-18T02:02:00Z"
    );
}

#[test]
fn recent_filters_by_device_prefix_and_time() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    assert!(store.recent(10, None, None, None).unwrap().is_empty());
    store
        .save(&record("a", "94:a9:90:07:9d:88", 1_000_000, 1))
        .unwrap();
    store
        .save(&record("b", "94:a9:90:aa:bb:cc", 2_000_000, 1))
        .unwrap();
    store
        .save(&record("c", "11:22:33:44:55:66", 3_000_000, 1))
        .unwrap();

    let ids = |v: Vec<huddle::store::model::IndexEntry>| {
        v.into_iter().map(|e| e.session_id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.recent(10, None, None, None).unwrap()),
        ["c", "b", "a"]
    );
    assert_eq!(
        ids(store.recent(10, Some(""), None, None).unwrap()),
        ["c", "b", "a"]
    );
    assert_eq!(
        ids(store.recent(10, Some("94:a9:90"), None, None).unwrap()),
        ["b", "a"]
    );
    assert_eq!(
        ids(store
            .recent(10, Some(" \"94:A9:90:07:9D:88\" "), None, None)
            .unwrap()),
        ["a"]
    );
    assert_eq!(
        ids(store
            .recent(10, Some("94:a9:90:07:9d:88:ff"), None, None)
            .unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.recent(10, None, Some(2_000_000), None).unwrap()),
        ["c", "b"]
    );
    assert_eq!(
        ids(store.recent(10, None, None, Some(2_000_000)).unwrap()),
        ["b", "a"]
    );
    assert_eq!(
        ids(store
            .recent(10, None, Some(1_500_000), Some(2_500_000))
            .unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(store.recent(10, Some("94"), Some(2_000_001), None).unwrap()),
        Vec::<String>::new()
    );
    // limit clamped to 1..=100
    assert_eq!(ids(store.recent(0, None, None, None).unwrap()), ["c"]);
    assert_eq!(ids(store.recent(2, None, None, None).unwrap()), ["c", "b"]);
    assert_eq!(store.recent(10_000, None, None, None).unwrap().len(), 3);
}

#[test]
fn path_traversal_ids_are_refused() {
    let tmp = TempDir::new();
    let data = tmp.0.join("data");
    let store = MeetingStore::open(&data).unwrap();
    fs::write(tmp.0.join("secret.json"), br#"{"sessionId":"x"}"#).unwrap();
    for bad in [
        "../secret",
        "../../etc/passwd",
        "a/b",
        "",
        "..",
        ".",
        "a b",
        "index",
        &"a".repeat(65),
    ] {
        assert!(store.load(bad).unwrap().is_none(), "{bad:?}");
        assert!(store.transcript(bad, 0, 10).unwrap().is_none(), "{bad:?}");
        assert!(store.load_record(bad).unwrap().is_none(), "{bad:?}");
        let err = store.save(&record(bad, DEVICE, 1_000_000, 1)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
    assert_eq!(
        file_names(&tmp.0),
        HashSet::from(["data".into(), "secret.json".into()])
    );
    assert!(!data.join("meetings/index.json").exists());
    assert!(!data.join("meetings/metrics.log").exists());
}

fn seg(ts: u64, text: &str) -> JournalRecord {
    JournalRecord::Segment(Segment {
        ts,
        text: text.into(),
        speaker_id: Some("spk-1".into()),
        tag: None,
    })
}

#[test]
fn journal_round_trip_close_and_delete() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let h = writer.handle();
    h.open("s1", DEVICE, 1_000).unwrap();
    h.append("s1", seg(1_100, "one")).unwrap();
    h.append("s1", seg(1_200, "two")).unwrap();
    h.append(
        "s1",
        JournalRecord::Checkpoint {
            ts: 1_300,
            segments: 2,
        },
    )
    .unwrap();
    h.open("s2", "other", 2_000).unwrap();
    h.flush(FLUSH).unwrap();

    let path = store.active_dir().join("s1.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        format!(r#"{{"kind":"start","sessionId":"s1","deviceId":"{DEVICE}","startedAt":1000}}"#)
    );
    assert_eq!(text.lines().count(), 4);

    let j = read_journal(&path).unwrap();
    assert_eq!(
        (j.session_id.as_str(), j.device_id.as_str(), j.started_at),
        ("s1", DEVICE, 1_000)
    );
    assert_eq!(texts(&j.segments), ["one", "two"]);
    assert_eq!(j.checkpoint_count, 1);
    assert_eq!(j.last_record_ts, 1_300);
    assert!(!j.finalized);

    // Suspend (keep), resume with the same id: appends continue, no second start.
    h.close("s1", false).unwrap();
    h.open("s1", DEVICE, 1_000).unwrap();
    h.append("s1", seg(1_400, "three")).unwrap();
    h.flush(FLUSH).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(r#""kind":"start""#).count(), 1);
    assert_eq!(
        texts(&read_journal(&path).unwrap().segments),
        ["one", "two", "three"]
    );

    let all = scan_journals(store.active_dir());
    assert_eq!(
        all.iter()
            .map(|j| j.session_id.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s1"]
    );

    h.close("s1", true).unwrap();
    h.close("never-opened", true).unwrap();
    h.flush(FLUSH).unwrap();
    assert!(!path.exists());
    assert_eq!(
        file_names(store.active_dir()),
        HashSet::from(["s2.jsonl".into()])
    );
    writer.shutdown();
    assert!(
        store.active_dir().join("s2.jsonl").exists(),
        "shutdown keeps open journals"
    );
}

#[test]
fn torn_last_line_recovers_every_complete_record() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let h = writer.handle();
    h.open("torn", DEVICE, 5_000).unwrap();
    for i in 0..20 {
        h.append("torn", seg(5_001 + i, &format!("line {i}")))
            .unwrap();
    }
    h.close("torn", false).unwrap();
    h.flush(FLUSH).unwrap();

    let path = store.active_dir().join("torn.jsonl");
    let full_line = serde_json::to_string(&seg(9_999, "never finished")).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&full_line.as_bytes()[..full_line.len() / 2]);
    fs::write(&path, bytes).unwrap();

    let all = scan_journals(store.active_dir());
    assert_eq!(all.len(), 1);
    let j = &all[0];
    assert_eq!(j.segments.len(), 20);
    assert_eq!(j.segments[19].text, "line 19");
    assert_eq!(j.last_record_ts, 5_020);
    writer.shutdown();
}

#[test]
fn appended_data_is_on_disk_within_a_second() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let h = writer.handle();
    h.open("sync", DEVICE, 1).unwrap();
    h.append("sync", seg(2, "durable")).unwrap();
    thread::sleep(Duration::from_millis(1200));
    // No flush: the writer's own cadence must have written (and fsynced) it.
    let j = read_journal(&store.active_dir().join("sync.jsonl")).unwrap();
    assert_eq!(texts(&j.segments), ["durable"]);
    assert_eq!(h.write_errors(), 0);
    drop(writer);
}

#[test]
fn finalize_record_marks_the_journal_finalized() {
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let h = writer.handle();
    h.open("fin", DEVICE, 1_000).unwrap();
    h.append("fin", seg(1_500, "x")).unwrap();
    h.append("fin", JournalRecord::Finalize { ts: 9_000 })
        .unwrap();
    h.open("live", DEVICE, 1_000).unwrap();
    h.flush(FLUSH).unwrap();

    let all = scan_journals(store.active_dir());
    let fin = all.iter().find(|j| j.session_id == "fin").unwrap();
    assert!(fin.finalized);
    assert_eq!(fin.last_record_ts, 9_000);
    assert!(fin.finalize_now(9_001, 600_000));
    let live = all.iter().find(|j| j.session_id == "live").unwrap();
    assert!(!live.finalized);
    assert!(!live.finalize_now(2_000, 600_000));
    assert!(live.finalize_now(700_000, 600_000));
    // A finalized journal is never resumed, even inside its window.
    let candidate = resume_candidate(&all, DEVICE, 9_001, 600_000).unwrap();
    assert_eq!(candidate.session_id, "live");
    writer.shutdown();
}

#[test]
fn resume_candidate_respects_window_and_device() {
    let j = |sid: &str, device: &str, last: u64, finalized: bool| RecoveredJournal {
        session_id: sid.into(),
        device_id: device.into(),
        started_at: 100,
        segments: vec![],
        checkpoint_count: 0,
        finalized,
        last_record_ts: last,
        path: PathBuf::from(format!("{sid}.jsonl")),
    };
    let journals = vec![
        j("old", DEVICE, 1_000, false),
        j("newer", DEVICE, 5_000, false),
        j("done", DEVICE, 9_000, true),
        j("other", "11:22:33:44:55:66", 9_500, false),
    ];
    let window = 10_000;
    let pick = |device: &str, now: u64| {
        resume_candidate(&journals, device, now, window).map(|j| j.session_id)
    };
    assert_eq!(pick(DEVICE, 6_000).as_deref(), Some("newer"));
    assert_eq!(
        pick(DEVICE, 15_000).as_deref(),
        Some("newer"),
        "window end is inclusive"
    );
    assert_eq!(pick(DEVICE, 15_001), None);
    assert_eq!(pick("11:22:33:44:55:66", 19_500).as_deref(), Some("other"));
    assert_eq!(pick("11:22:33:44:55:66", 19_501), None);
    assert_eq!(pick("aa:bb", 6_000), None);

    // The same rule on journals read back from disk.
    let tmp = TempDir::new();
    let store = MeetingStore::open(&tmp.0).unwrap();
    let writer = JournalWriter::start(store.active_dir(), 64).unwrap();
    let h = writer.handle();
    h.open("disk", DEVICE, 50_000).unwrap();
    h.append("disk", seg(60_000, "x")).unwrap();
    h.flush(FLUSH).unwrap();
    let scanned = scan_journals(store.active_dir());
    assert_eq!(
        resume_candidate(&scanned, DEVICE, 70_000, window)
            .unwrap()
            .segments
            .len(),
        1
    );
    assert!(resume_candidate(&scanned, DEVICE, 70_001, window).is_none());
    writer.shutdown();
}
