//! A tree's changes (`Tree::take_changes`), applied to the rows stored before, give the tree's
//! rows: what lets the agent persist its host model by what changed rather than whole.

use std::collections::BTreeMap;

use cwmp::{ParameterValue, Value};
use datamodel::tree::{Part, Row, Snapshot};
use datamodel::{Schema, Tree};
use proptest::prelude::*;

const POOLS: &str = "Device.DHCPv4.Server.Pool.";
const HOSTS: &str = "Device.Hosts.Host.";

#[derive(Debug, Clone)]
enum Op {
    AddPool,
    DeletePool(u32),
    AddStatic(u32),
    DeleteStatic(u32, u32),
    Alias(u32, u8),
    LeaseTime(u32, i32),
    AddHost,
    DeleteHost(u32),
    HostName(u32, u8),
    Persist,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::AddPool),
        (1..6u32).prop_map(Op::DeletePool),
        (1..6u32).prop_map(Op::AddStatic),
        (1..6u32, 1..4u32).prop_map(|(p, s)| Op::DeleteStatic(p, s)),
        (1..6u32, 0..4u8).prop_map(|(p, a)| Op::Alias(p, a)),
        (1..6u32, -1..100_000i32).prop_map(|(p, t)| Op::LeaseTime(p, t)),
        Just(Op::AddHost),
        (1..6u32).prop_map(Op::DeleteHost),
        (1..6u32, 0..3u8).prop_map(|(h, n)| Op::HostName(h, n)),
        Just(Op::Persist),
    ]
}

type Stored = BTreeMap<(Part, String), Row>;

fn rows(snap: &Snapshot) -> Stored {
    snap.rows().map(|(path, row)| ((row.part(), path.to_string()), row)).collect()
}

fn persist(tree: &mut Tree, stored: &mut Stored) {
    for (key, row) in tree.take_changes() {
        match row {
            Some(r) => {
                assert_eq!(r.part(), key.0, "{key:?}");
                stored.insert(key, r);
            }
            None => {
                stored.remove(&key);
            }
        }
    }
}

fn set(tree: &mut Tree, name: String, value: Value) {
    // Refusals (a row that is not there, an alias written twice or taken) change nothing.
    if let Ok(v) = tree.validate(&[ParameterValue::new(name, value)]) {
        tree.apply(v);
    }
}

fn run(tree: &mut Tree, stored: &mut Stored, op: Op) {
    match op {
        Op::AddPool => {
            let _ = tree.add_object(POOLS);
        }
        Op::DeletePool(p) => {
            let _ = tree.delete_object(&format!("{POOLS}{p}."));
        }
        Op::AddStatic(p) => {
            let _ = tree.add_object(&format!("{POOLS}{p}.StaticAddress."));
        }
        Op::DeleteStatic(p, s) => {
            let _ = tree.delete_object(&format!("{POOLS}{p}.StaticAddress.{s}."));
        }
        Op::Alias(p, a) => set(tree, format!("{POOLS}{p}.Alias"), Value::String(format!("lan-{a}"))),
        Op::LeaseTime(p, t) => set(tree, format!("{POOLS}{p}.LeaseTime"), Value::Int(t)),
        Op::AddHost => {
            let _ = tree.add_object_internal(HOSTS);
        }
        Op::DeleteHost(h) => {
            let _ = tree.delete_object_internal(&format!("{HOSTS}{h}."));
        }
        Op::HostName(h, n) => {
            let _ = tree.set_internal(&format!("{HOSTS}{h}.HostName"), Value::String(format!("pc-{n}")));
        }
        Op::Persist => persist(tree, stored),
    }
}

proptest! {
    #[test]
    fn stored_rows_plus_changes_are_the_tree(ops in proptest::collection::vec(op(), 0..60)) {
        let mut tree = Tree::new(Schema::vrgw());
        let mut stored = rows(&tree.snapshot());
        tree.track_changes();
        for o in ops {
            run(&mut tree, &mut stored, o);
        }
        persist(&mut tree, &mut stored);
        prop_assert_eq!(&stored, &rows(&tree.snapshot()));
        // And the stored rows restore the same tree.
        let back = Snapshot::from_rows(stored.into_iter().map(|((_, path), row)| (path, row)));
        let back = Tree::restore(Schema::vrgw(), back).expect("restore");
        prop_assert_eq!(back.snapshot(), tree.snapshot());
    }
}

#[test]
fn changes_name_only_what_changed_and_nothing_untracked() {
    let mut tree = Tree::new(Schema::vrgw());
    tree.add_object(POOLS).expect("untracked add");
    assert!(tree.take_changes().is_empty(), "nothing is recorded before tracking starts");
    tree.track_changes();
    tree.add_object_internal(HOSTS).expect("host 1");
    tree.set_internal("Device.Hosts.Host.1.HostName", Value::String("pc".into())).expect("name");
    assert!(!tree.take_changes().is_empty());
    // Writing a value it already holds is no change.
    tree.set_internal("Device.Hosts.Host.1.HostName", Value::String("pc".into())).expect("same name");
    assert!(tree.take_changes().is_empty());
    tree.set_internal("Device.Hosts.Host.1.HostName", Value::String("laptop".into())).expect("new name");
    let c = tree.take_changes();
    assert_eq!(
        c.into_iter().collect::<Vec<_>>(),
        vec![(
            (Part::Value, "Device.Hosts.Host.1.HostName".to_string()),
            Some(Row::Value(Value::String("laptop".into())))
        )]
    );
    tree.delete_object_internal("Device.Hosts.Host.1.").expect("delete");
    let c = tree.take_changes();
    assert_eq!(c.get(&(Part::Value, "Device.Hosts.Host.1.HostName".to_string())), Some(&None), "gone");
    assert!(matches!(c.get(&(Part::Table, HOSTS.to_string())), Some(Some(Row::Table(_)))), "its table changed");
}
