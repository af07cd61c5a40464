//! The committed facts and docs match their sources: `data/device2.dm` is what `dm-gen` extracts
//! from the Broadband Forum XML in `../shared/bbf` today (so a parameter we serve that the spec
//! lacks, or types differently, fails here), `src/virtualization.rs` is what it generates from the
//! vendor XML (and its enumerations are the XML's), and docs/datamodel.md is what the schema renders.

use std::path::{Path, PathBuf};

fn shared_bbf() -> PathBuf {
    let dir = std::env::var_os("VRGW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("bbf");
    assert!(
        dir.join("tr-181-2-17-0-cwmp-full.xml").is_file(),
        "this test reads the Broadband Forum TR-181 XML from {} and it is not there: \
         check out ../shared beside the repository (or set VRGW_SHARED)",
        dir.display()
    );
    dir
}

use datamodel::virtualization::{
    Flavor, Instance, InstanceDevice, InstanceManagementMode, InstanceStatus, Migration, MigrationCommand,
    MigrationMode, MigrationStatus, Pool, PoolStatus, RequestedState, Template, TemplateManagementMode, UnknownValue,
    Virtualization,
};

/// The TR-181 full XML and the vendor XML.
fn sources() -> (String, String) {
    let bbf = std::fs::read_to_string(shared_bbf().join("tr-181-2-17-0-cwmp-full.xml")).expect("read TR-181");
    let vendor_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/vrgw-virtualization.xml");
    (bbf, std::fs::read_to_string(vendor_path).expect("read vendor XML"))
}

#[test]
fn facts_file_matches_the_bbf_xml() {
    let (bbf, vendor) = sources();
    let fresh = datamodel::gen::extract(&bbf, "tr-181-2-17-0-cwmp-full.xml", &vendor, "vrgw-virtualization.xml")
        .expect("extract");
    assert!(
        fresh == datamodel::schema::DM_FACTS,
        "datamodel/data/device2.dm is stale: regenerate it with\n  cargo run -p datamodel --bin dm-gen -- extract \
         ../shared/bbf/tr-181-2-17-0-cwmp-full.xml datamodel/vendor/vrgw-virtualization.xml > datamodel/data/device2.dm"
    );
}

#[test]
fn tr098_facts_file_matches_the_bbf_xml() {
    let xml = std::fs::read_to_string(shared_bbf().join("tr-098-1-8-0-full.xml")).expect("read TR-098");
    let fresh = datamodel::gen::extract_tr098(&xml, "tr-098-1-8-0-full.xml").expect("extract");
    assert!(
        fresh == datamodel::schema::TR098_FACTS,
        "datamodel/data/tr098.dm is stale: regenerate it with\n  cargo run -p datamodel --bin dm-gen -- extract-tr098 \
         ../shared/bbf/tr-098-1-8-0-full.xml > datamodel/data/tr098.dm"
    );
    // Every object the gateway serves, with the parameters GenieACS's examples name.
    let schema = datamodel::Schema::tr098();
    assert_eq!(schema.root(), "InternetGatewayDevice.");
    for object in datamodel::gen::TR098_OBJECTS {
        assert!(schema.object(object).is_some(), "{object}");
    }
    let mac = schema
        .param("InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.MACAddress")
        .expect("WANIPConnection.MACAddress");
    assert_eq!(mac.data_type.as_deref(), Some("MACAddress"));
    let psk = schema
        .param("InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.PreSharedKey.{i}.PreSharedKey")
        .expect("PreSharedKey");
    assert!(psk.hidden, "a key reads as an empty string");
    let ppp = schema
        .object("InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.")
        .expect("WANPPPConnection");
    assert!(ppp.writable, "WANPPPConnection takes AddObject");
}

#[test]
fn extension_module_matches_the_vendor_xml() {
    let (bbf, vendor) = sources();
    let fresh = datamodel::gen::rust_module(&bbf, "tr-181-2-17-0-cwmp-full.xml", &vendor, "vrgw-virtualization.xml")
        .expect("generate");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/virtualization.rs");
    let committed = std::fs::read_to_string(path).expect("src/virtualization.rs");
    assert!(
        fresh == committed,
        "datamodel/src/virtualization.rs is stale: regenerate it with\n  cargo run -p datamodel --bin dm-gen -- rust \
         ../shared/bbf/tr-181-2-17-0-cwmp-full.xml datamodel/vendor/vrgw-virtualization.xml > datamodel/src/virtualization.rs"
    );
}

/// Every value of `$ty` round-trips through `as_str`/`FromStr`, `Display` and serde, and the
/// values are the enumeration the data model (the XML, through device2.dm) gives its parameter.
macro_rules! check_enum {
    ($schema:expr, $ty:ty) => {{
        let def =
            $schema.param(<$ty>::PARAMETER).unwrap_or_else(|| panic!("{} is not in the schema", <$ty>::PARAMETER));
        let spelled: Vec<&str> = <$ty>::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(spelled, def.enums, "{}", <$ty>::PARAMETER);
        for v in <$ty>::ALL {
            assert_eq!(v.as_str().parse::<$ty>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
            let json = serde_json::to_string(&v).expect("serialize");
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<$ty>(&json).expect("deserialize"), v);
        }
        assert_eq!(def.default.as_deref(), Some(<$ty>::default().as_str()), "{}", <$ty>::PARAMETER);
        let err = "no such value".parse::<$ty>().expect_err("not a value");
        assert_eq!(
            err,
            UnknownValue {
                parameter: <$ty>::PARAMETER,
                expected: def.enums.join(", ").leak(),
                value: "no such value".into()
            }
        );
        assert!(serde_json::from_str::<$ty>("\"no such value\"").is_err());
        <$ty>::PARAMETER
    }};
}

#[test]
fn extension_enums_are_the_xml_enumerations() {
    let schema = datamodel::Schema::host();
    let checked = [
        check_enum!(schema, Flavor),
        check_enum!(schema, TemplateManagementMode),
        check_enum!(schema, PoolStatus),
        check_enum!(schema, InstanceStatus),
        check_enum!(schema, RequestedState),
        check_enum!(schema, InstanceManagementMode),
        check_enum!(schema, MigrationMode),
        check_enum!(schema, MigrationCommand),
        check_enum!(schema, MigrationStatus),
    ];
    // Every enumerated parameter of the extension has its enum here.
    let enumerated: Vec<&str> = schema
        .params
        .iter()
        .filter(|p| p.path.starts_with(Virtualization::OBJECT) && !p.enums.is_empty())
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(enumerated, checked);
    assert_eq!(Flavor::Vm.as_str(), "VM");
    assert_eq!("Live".parse(), Ok(MigrationMode::Live));
    assert_eq!(
        "live".parse::<MigrationMode>().map_err(|e| e.to_string()),
        Err("\"live\" is not a value of Device.X_VRGW-ORG_Virtualization.Instance.{i}.Migration.Mode \
             (one of None, Live, ColdImage, ColdContext)"
            .to_string())
    );
}

#[test]
fn extension_paths_are_the_schema_objects() {
    let schema = datamodel::Schema::host();
    for object in [
        Virtualization::OBJECT,
        Template::OBJECT,
        Pool::OBJECT,
        Instance::OBJECT,
        Migration::OBJECT,
        InstanceDevice::OBJECT,
    ] {
        assert!(schema.object(object).is_some(), "{object}");
    }
    assert_eq!(Virtualization::OBJECT, datamodel::VIRTUALIZATION);
    assert_eq!(InstanceDevice::OBJECT, datamodel::INSTANCE_MOUNT);
    assert_eq!(Instance::at(3).migration().command(), "Device.X_VRGW-ORG_Virtualization.Instance.3.Migration.Command");
    assert_eq!(Instance::at(3).migration(), Migration::at(3));
    assert_eq!(Virtualization::at().instance(3), Instance::at(3));
    assert_eq!(Instance::relative().migration().mode(), "Migration.Mode");
    assert_eq!(Instance::at(12).device().path(), "Device.X_VRGW-ORG_Virtualization.Instance.12.Device.");
    assert_eq!(Template::at(2).to_string(), "Device.X_VRGW-ORG_Virtualization.Template.2.");
    assert_eq!(Virtualization::at().migration_uri(), "Device.X_VRGW-ORG_Virtualization.MigrationURI");
    assert_eq!(Instance::TABLE, "Device.X_VRGW-ORG_Virtualization.Instance.");
    assert_eq!(Instance::split("Device.X_VRGW-ORG_Virtualization.Instance.12.Subscriber"), Some((12, "Subscriber")));
    assert_eq!(Instance::split("Device.X_VRGW-ORG_Virtualization.Instance.12."), Some((12, "")));
    // A path reference names the row without the trailing dot.
    assert_eq!(Template::split("Device.X_VRGW-ORG_Virtualization.Template.2"), Some((2, "")));
    for outside in [
        "Device.X_VRGW-ORG_Virtualization.Instance.012.Subscriber",
        "Device.X_VRGW-ORG_Virtualization.Instance.0.Subscriber",
        "Device.X_VRGW-ORG_Virtualization.Instance.+1.Subscriber",
        "Device.X_VRGW-ORG_Virtualization.Instance.",
        "Device.X_VRGW-ORG_Virtualization.Instance..Subscriber",
        "Device.X_VRGW-ORG_Virtualization.Pool.1.Status",
        "Device.X_VRGW-ORG_Virtualization.Instance.99999999999.Status",
    ] {
        assert_eq!(Instance::split(outside), None, "{outside}");
    }
    assert_eq!(Pool::split("Device.X_VRGW-ORG_Virtualization.Pool.1.Status"), Some((1, "Status")));
}

#[test]
fn generator_reports_missing_objects() {
    let err = datamodel::gen::extract(
        "<dm:document xmlns:dm=\"x\"><model name=\"Device:2.17\"/></dm:document>",
        "empty.xml",
        "<x/>",
        "v.xml",
    )
    .expect_err("nothing to extract");
    assert!(err.to_string().contains("object Device. not found"), "{err}");
    let err = datamodel::gen::extract_tr098(
        "<dm:document xmlns:dm=\"x\"><model name=\"InternetGatewayDevice:1.14\"/></dm:document>",
        "igd.xml",
    )
    .expect_err("nothing to extract");
    assert_eq!(err.to_string(), "igd.xml: object InternetGatewayDevice. not found");
    let err = datamodel::gen::extract("<a><b></a>", "broken.xml", "<x/>", "v.xml").expect_err("malformed");
    assert!(err.to_string().starts_with("broken.xml: malformed XML"), "{err}");
}

#[test]
fn datamodel_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/datamodel.md");
    let committed = std::fs::read_to_string(&path).expect("docs/datamodel.md");
    assert!(
        committed == datamodel::docs::markdown(),
        "docs/datamodel.md is stale: cargo run -p datamodel --bin dm-gen -- docs > docs/datamodel.md"
    );
}
