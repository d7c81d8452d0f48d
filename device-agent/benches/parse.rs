//! Parse + extract on real WeChat dumps (fixtures/real-dumps/): the work the phone actor
//! does on every screen it reads. `scripts/bench` runs this beside a Python xml.etree
//! implementation of the same extraction.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tapwire_device_agent::{Dump, UiMaps, read_screen};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn bench(c: &mut Criterion) {
    let maps = UiMaps::load_dir(&root().join("ui-maps")).expect("maps");
    let map = maps.by_name("wechat-8.0").expect("8.0 map");
    let mut group = c.benchmark_group("parse_and_extract");
    for file in [
        "chat-8.0.x-2026-01-group.xml",
        "list-8.0.x-2026-01-groups.xml",
    ] {
        let raw = std::fs::read_to_string(root().join("fixtures/real-dumps").join(file))
            .expect("fixture");
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(file, |b| {
            b.iter(|| {
                let dump = Dump::parse(black_box(&raw)).expect("parses");
                black_box(read_screen(&dump, map))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
