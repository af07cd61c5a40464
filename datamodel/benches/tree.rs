//! GetParameterValues of `Device.` over 200 instances of 33 parameters (a DHCPv4 server pool
//! with two static addresses), and validation of a 100-parameter SetParameterValues.
//! `cargo bench -p datamodel`
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cwmp::{ParameterValue, Value};
use datamodel::{DataModel, Schema, Tree};

fn model() -> DataModel {
    let mut m = DataModel::new(Tree::new(Schema::vrgw()));
    for i in 1..=200 {
        m.add_object("Device.DHCPv4.Server.Pool.", "").expect("pool");
        for _ in 0..2 {
            m.add_object(&format!("Device.DHCPv4.Server.Pool.{i}.StaticAddress."), "").expect("static");
        }
    }
    m
}

fn spv() -> Vec<ParameterValue> {
    (1..=25)
        .flat_map(|i| {
            let p = format!("Device.DHCPv4.Server.Pool.{i}.");
            [
                ParameterValue::new(format!("{p}MinAddress"), Value::String(format!("10.{i}.0.10"))),
                ParameterValue::new(format!("{p}MaxAddress"), Value::String(format!("10.{i}.0.200"))),
                ParameterValue::new(format!("{p}LeaseTime"), Value::Int(3600)),
                ParameterValue::new(format!("{p}DNSServers"), Value::String(format!("10.{i}.0.1,9.9.9.9"))),
            ]
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let m = model();
    let all = m.get_parameter_values(&["Device.".into()]).expect("gpv");
    let pool_params = all.iter().filter(|p| p.name.starts_with("Device.DHCPv4.Server.Pool.")).count();
    assert_eq!(pool_params, 200 * 33, "{pool_params} pool parameters");
    let mut g = c.benchmark_group("datamodel");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function(format!("gpv_device_root_{}_values", all.len()), |b| {
        b.iter(|| m.get_parameter_values(std::hint::black_box(&["Device.".to_string()])))
    });
    let values = spv();
    assert_eq!(values.len(), 100);
    m.validate_set_parameter_values(&values).expect("valid");
    g.throughput(Throughput::Elements(100));
    g.bench_function("spv_validate_100", |b| b.iter(|| m.validate_set_parameter_values(std::hint::black_box(&values))));
    g.bench_function("spv_apply_100", |b| {
        let mut m2 = model();
        b.iter(|| m2.set_parameter_values(std::hint::black_box(&values), "k"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
