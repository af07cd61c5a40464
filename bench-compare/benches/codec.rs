//! Decode and encode of an Inform with 60 parameters and a GetParameterValuesResponse with 500
//! parameters: our `cwmp` next to the crates.io `cwmp` 0.2.2, on the same bytes.
//!
//! `cargo bench --manifest-path bench-compare/Cargo.toml --target-dir target`

#[path = "../../cwmp/tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cwmp::{Body, CwmpNs, Envelope, Limits};

fn cases() -> Vec<(&'static str, String)> {
    let inform = Envelope::new(CwmpNs::V1_0, Some("1".into()), Body::Inform(common::inform(60))).encode();
    let gpv = Envelope::new(
        CwmpNs::V1_0,
        Some("2".into()),
        Body::GetParameterValuesResponse(common::get_parameter_values_response(500)),
    )
    .encode();
    vec![("inform_60", inform), ("gpv_response_500", gpv)]
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    for (name, xml) in cases() {
        // Both decoders must really read every parameter for the comparison to mean anything.
        let ours = Envelope::decode(xml.as_bytes(), &limits).expect("ours decodes");
        let theirs = cwmp_crates_io::parse_bytes(xml.as_bytes()).expect("crates.io cwmp decodes");
        let regenerated = cwmp_crates_io::generate(&theirs).expect("crates.io cwmp encodes");
        let last = match &ours.body {
            Body::Inform(i) => i.parameter_list.last().map(|p| p.name.clone()),
            Body::GetParameterValuesResponse(g) => g.parameter_list.last().map(|p| p.name.clone()),
            _ => None,
        }
        .expect("a last parameter");
        assert!(regenerated.contains(&last), "crates.io cwmp lost {last}");

        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.throughput(Throughput::Bytes(xml.len() as u64));
        g.bench_function(BenchmarkId::new("ours", xml.len()), |b| {
            b.iter(|| Envelope::decode(std::hint::black_box(xml.as_bytes()), &limits))
        });
        g.bench_function(BenchmarkId::new("crates.io-cwmp-0.2.2", xml.len()), |b| {
            b.iter(|| cwmp_crates_io::parse_bytes(std::hint::black_box(xml.as_bytes())))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{name}"));
        g.throughput(Throughput::Bytes(xml.len() as u64));
        g.bench_function(BenchmarkId::new("ours", xml.len()), |b| b.iter(|| std::hint::black_box(&ours).encode()));
        g.bench_function(BenchmarkId::new("crates.io-cwmp-0.2.2", xml.len()), |b| {
            b.iter(|| cwmp_crates_io::generate(std::hint::black_box(&theirs)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
