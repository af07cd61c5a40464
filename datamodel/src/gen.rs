//! The generator behind `dm-gen extract`: reads Broadband Forum data-model XML (the flattened
//! TR-181 "full" file and our vendor extension in the same format) and writes the compact `.dm`
//! facts file that [`crate::schema`] loads; `dm-gen extract-tr098` does the same for the subset
//! of TR-098 (`InternetGatewayDevice:1`) a residential gateway reports ([`extract_tr098`]). Facts only: names, types, access, sizes, ranges,
//! enumerations, defaults, unique keys; no descriptions. `dm-gen rust` ([`rust_module`]) writes
//! the extension's typed paths and enumerations (`src/virtualization.rs`) from the same parse.

use std::collections::HashMap;
use std::fmt::Write;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

mod rust;

/// The TR-181 objects the stack serves (host and vRGW profiles together).
pub const TR181_OBJECTS: &[&str] = &[
    "Device.",
    "Device.DeviceInfo.",
    "Device.DeviceInfo.MemoryStatus.",
    "Device.DeviceInfo.ProxierInfo.",
    "Device.ManagementServer.",
    "Device.ManagementServer.EmbeddedDevice.{i}.",
    "Device.ManagementServer.VirtualDevice.{i}.",
    "Device.Ethernet.",
    "Device.Ethernet.Interface.{i}.",
    "Device.Ethernet.VLANTermination.{i}.",
    "Device.IP.",
    "Device.IP.Interface.{i}.",
    "Device.IP.Interface.{i}.IPv4Address.{i}.",
    "Device.DHCPv4.",
    "Device.DHCPv4.Server.",
    "Device.DHCPv4.Server.Pool.{i}.",
    "Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.",
    "Device.WiFi.",
    "Device.WiFi.SSID.{i}.",
    "Device.WiFi.AccessPoint.{i}.",
    "Device.WiFi.AccessPoint.{i}.Security.",
    "Device.NAT.",
    "Device.NAT.InterfaceSetting.{i}.",
    "Device.NAT.PortMapping.{i}.",
    "Device.Firewall.",
    "Device.DNS.",
    "Device.DNS.Relay.",
    "Device.DNS.Relay.Forwarding.{i}.",
    "Device.Hosts.",
    "Device.Hosts.Host.{i}.",
];

/// The TR-098 objects a residential gateway reports (the simulated TR-098 CPE's data model):
/// DeviceInfo, ManagementServer, Time, Layer3Forwarding, one LAN side (DHCP server, Wi-Fi with
/// its pre-shared keys, hosts) and the WAN connections (IP and PPP).
pub const TR098_OBJECTS: &[&str] = &[
    "InternetGatewayDevice.",
    "InternetGatewayDevice.DeviceInfo.",
    "InternetGatewayDevice.ManagementServer.",
    "InternetGatewayDevice.Time.",
    "InternetGatewayDevice.Layer3Forwarding.",
    "InternetGatewayDevice.Layer3Forwarding.Forwarding.{i}.",
    "InternetGatewayDevice.LANDevice.{i}.",
    "InternetGatewayDevice.LANDevice.{i}.LANHostConfigManagement.",
    "InternetGatewayDevice.LANDevice.{i}.LANHostConfigManagement.IPInterface.{i}.",
    "InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.",
    "InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.PreSharedKey.{i}.",
    "InternetGatewayDevice.LANDevice.{i}.Hosts.",
    "InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.",
    "InternetGatewayDevice.WANDevice.{i}.",
    "InternetGatewayDevice.WANDevice.{i}.WANCommonInterfaceConfig.",
    "InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.",
    "InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.",
    "InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANPPPConnection.{i}.",
];

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The XML is malformed.
    #[error("{file}: malformed XML near byte {pos}: {msg}")]
    Xml {
        /// Which input.
        file: String,
        /// Byte position.
        pos: u64,
        /// Parser message.
        msg: String,
    },
    /// An object in [`TR181_OBJECTS`] (or [`TR098_OBJECTS`]) is not in the XML.
    #[error("{file}: object {object} not found")]
    MissingObject {
        /// Which input.
        file: String,
        /// The object.
        object: String,
    },
    /// A parameter names a data type that no file defines.
    #[error("parameter {param}: unknown data type {data_type}")]
    UnknownDataType {
        /// The parameter path.
        param: String,
        /// The type name.
        data_type: String,
    },
    /// Two items of the generated Rust module would have the same name.
    #[error("{object}: two items are named {name} in Rust")]
    NameClash {
        /// The object.
        object: String,
        /// The name.
        name: String,
    },
}

#[derive(Debug, Default, Clone)]
struct Facets {
    prim: Option<String>,
    base: Option<String>,
    size: Option<(Option<String>, Option<String>)>,
    ranges: Vec<(Option<String>, Option<String>)>,
    enums: Vec<String>,
}

impl Facets {
    /// `self` refined by `child` (the more specific definition wins where it says something).
    fn refined_by(&self, child: &Facets) -> Facets {
        Facets {
            prim: child.prim.clone().or_else(|| self.prim.clone()),
            base: None,
            size: child.size.clone().or_else(|| self.size.clone()),
            ranges: if child.ranges.is_empty() { self.ranges.clone() } else { child.ranges.clone() },
            enums: if child.enums.is_empty() { self.enums.clone() } else { child.enums.clone() },
        }
    }
}

#[derive(Debug, Default)]
struct Param {
    name: String,
    access: String,
    notify: Option<String>,
    list: Option<(Option<String>, Option<String>, Option<String>)>,
    data_type: Option<String>,
    facets: Facets,
    default: Option<String>,
    factory_default: Option<String>,
    status: Option<String>,
    enum_ref: Option<String>,
    /// `hidden` or `secured` syntax: reads return an empty string (passwords, keys).
    hidden: bool,
}

#[derive(Debug, Default)]
struct Object {
    name: String,
    access: String,
    min: Option<String>,
    max: Option<String>,
    entries: Option<String>,
    enable: Option<String>,
    unique: Vec<(bool, Vec<String>)>,
    params: Vec<Param>,
}

#[derive(Default)]
struct Doc {
    types: HashMap<String, Facets>,
    objects: Vec<Object>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

const PRIMS: &[&str] =
    &["string", "int", "unsignedInt", "long", "unsignedLong", "boolean", "dateTime", "base64", "hexBinary", "decimal"];

fn parse(text: &str, file: &str) -> Result<Doc, GenError> {
    let mut r = Reader::from_str(text);
    r.config_mut().expand_empty_elements = true;
    let mut doc = Doc::default();
    let mut stack: Vec<String> = Vec::new();
    let mut dtype: Option<(String, Facets)> = None;
    let mut object: Option<Object> = None;
    let mut param: Option<Param> = None;
    let mut unique: Option<(bool, Vec<String>)> = None;
    loop {
        let ev = r.read_event().map_err(|e| GenError::Xml {
            file: file.to_string(),
            pos: r.error_position(),
            msg: e.to_string(),
        })?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let parent = stack.last().map(String::as_str).unwrap_or("");
                let in_syntax = stack.iter().any(|s| s == "syntax");
                let in_list = parent == "list";
                match name.as_str() {
                    "dataType" if parent == "document" || parent.is_empty() => {
                        if let Some(n) = attr(&e, "name") {
                            let f = Facets { base: attr(&e, "base"), ..Facets::default() };
                            dtype = Some((n, f));
                        }
                    }
                    "dataType" if in_syntax => {
                        if let Some(p) = param.as_mut() {
                            p.data_type = attr(&e, "ref").or_else(|| attr(&e, "base"));
                        }
                    }
                    "object" if attr(&e, "name").is_some() && parent == "model" => {
                        object = Some(Object {
                            name: attr(&e, "name").unwrap_or_default(),
                            access: attr(&e, "access").unwrap_or_else(|| "readOnly".into()),
                            min: attr(&e, "minEntries"),
                            max: attr(&e, "maxEntries"),
                            entries: attr(&e, "numEntriesParameter"),
                            enable: attr(&e, "enableParameter"),
                            ..Object::default()
                        });
                    }
                    "uniqueKey" if object.is_some() => {
                        unique = Some((attr(&e, "functional").as_deref() != Some("false"), Vec::new()));
                    }
                    "parameter" if unique.is_some() => {
                        if let (Some(u), Some(r)) = (unique.as_mut(), attr(&e, "ref")) {
                            u.1.push(r);
                        }
                    }
                    "parameter" if object.is_some() && parent == "object" => {
                        if let Some(n) = attr(&e, "name") {
                            param = Some(Param {
                                name: n,
                                access: attr(&e, "access").unwrap_or_else(|| "readOnly".into()),
                                notify: attr(&e, "activeNotify"),
                                status: attr(&e, "status"),
                                ..Param::default()
                            });
                        }
                    }
                    "syntax" => {
                        if let Some(p) = param.as_mut() {
                            p.hidden = attr(&e, "hidden").as_deref() == Some("true")
                                || attr(&e, "secured").as_deref() == Some("true");
                        }
                    }
                    "list" if in_syntax => {
                        if let Some(p) = param.as_mut() {
                            p.list = Some((attr(&e, "minItems"), attr(&e, "maxItems"), None));
                        }
                    }
                    "size" if in_list => {
                        if let Some((_, _, len)) = param.as_mut().and_then(|p| p.list.as_mut()) {
                            *len = attr(&e, "maxLength");
                        }
                    }
                    "default" if in_syntax => {
                        if let Some(p) = param.as_mut() {
                            match attr(&e, "type").as_deref() {
                                Some("factory") => p.factory_default = attr(&e, "value"),
                                _ => p.default = attr(&e, "value"),
                            }
                        }
                    }
                    prim if PRIMS.contains(&prim) && (in_syntax || dtype.is_some()) && !in_list => {
                        let f = current_facets(&mut dtype, &mut param);
                        if let Some(f) = f {
                            f.prim = Some(prim.to_string());
                        }
                    }
                    "enumerationRef" if in_syntax => {
                        if let Some(p) = param.as_mut() {
                            p.enum_ref = attr(&e, "targetParam");
                        }
                    }
                    "size" | "range" | "enumeration" if in_syntax || dtype.is_some() => {
                        if let Some(f) = current_facets(&mut dtype, &mut param) {
                            match name.as_str() {
                                "size" => f.size = Some((attr(&e, "minLength"), attr(&e, "maxLength"))),
                                "range" => f.ranges.push((attr(&e, "minInclusive"), attr(&e, "maxInclusive"))),
                                _ => {
                                    if let Some(v) = attr(&e, "value") {
                                        f.enums.push(v);
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
                stack.push(name);
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                match name.as_str() {
                    "dataType" if dtype.is_some() && !stack.iter().any(|s| s == "syntax") => {
                        if let Some((n, f)) = dtype.take() {
                            doc.types.insert(n, f);
                        }
                    }
                    "uniqueKey" => {
                        if let (Some(u), Some(o)) = (unique.take(), object.as_mut()) {
                            o.unique.push(u);
                        }
                    }
                    "parameter" if param.is_some() && stack.last().map(String::as_str) == Some("object") => {
                        if let (Some(p), Some(o)) = (param.take(), object.as_mut()) {
                            if !matches!(p.status.as_deref(), Some("obsoleted" | "deleted")) {
                                o.params.push(p);
                            }
                        }
                    }
                    "object" => {
                        if let Some(o) = object.take() {
                            doc.objects.push(o);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(doc)
}

fn current_facets<'a>(dtype: &'a mut Option<(String, Facets)>, param: &'a mut Option<Param>) -> Option<&'a mut Facets> {
    if let Some(p) = param.as_mut() {
        return Some(&mut p.facets);
    }
    dtype.as_mut().map(|(_, f)| f)
}

/// Resolves a named data type down to its primitive, merging facets along the `base` chain.
fn resolve(types: &HashMap<String, Facets>, name: &str, depth: usize) -> Option<Facets> {
    let t = types.get(name)?;
    if depth > 16 {
        return None;
    }
    match &t.base {
        Some(b) => Some(resolve(types, b, depth + 1)?.refined_by(t)),
        None => Some(t.clone()),
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n")
}

fn range_text(r: &(Option<String>, Option<String>)) -> String {
    format!("{}..{}", r.0.as_deref().unwrap_or(""), r.1.as_deref().unwrap_or(""))
}

/// The facets of `p` (of object `o`), its data type's merged in.
fn param_facets(o: &Object, p: &Param, types: &HashMap<String, Facets>) -> Result<Facets, GenError> {
    let mut facets = match &p.data_type {
        Some(dt) => {
            let base = resolve(types, dt, 0).ok_or_else(|| GenError::UnknownDataType {
                param: format!("{}{}", o.name, p.name),
                data_type: dt.clone(),
            })?;
            base.refined_by(&p.facets)
        }
        None => p.facets.clone(),
    };
    if let Some(target) = &p.enum_ref {
        // Values are those of a sibling (ModeEnabled takes ModesSupported's enumeration).
        if let Some(t) = o.params.iter().find(|q| &q.name == target) {
            facets.enums = t.facets.enums.clone();
        }
    }
    Ok(facets)
}

fn write_object(out: &mut String, o: &Object, types: &HashMap<String, Facets>) -> Result<(), GenError> {
    let access = if o.access == "readWrite" { "w" } else { "r" };
    let _ = write!(out, "O\t{}\t{access}", o.name);
    if let Some(m) = &o.min {
        let _ = write!(out, "\tmin={m}");
    }
    if let Some(m) = &o.max {
        let _ = write!(out, "\tmax={m}");
    }
    if let Some(e) = &o.entries {
        let _ = write!(out, "\tentries={e}");
    }
    if let Some(e) = &o.enable {
        let _ = write!(out, "\tenable={e}");
    }
    for (functional, keys) in &o.unique {
        let _ = write!(out, "\t{}={}", if *functional { "fkey" } else { "key" }, keys.join("+"));
    }
    out.push('\n');
    for p in &o.params {
        let facets = param_facets(o, p, types)?;
        let access = match p.access.as_str() {
            "readWrite" => "w",
            "writeOnceReadOnly" => "w1",
            _ => "r",
        };
        let prim = facets.prim.as_deref().unwrap_or("string");
        let _ = write!(out, "P\t{}\t{access}\t{prim}", p.name);
        if let Some(dt) = &p.data_type {
            let _ = write!(out, "\tdt={dt}");
        }
        if let Some((min, max, len)) = &p.list {
            let _ = write!(
                out,
                "\tlist={}..{},{}",
                min.as_deref().unwrap_or(""),
                max.as_deref().unwrap_or(""),
                len.as_deref().unwrap_or("")
            );
        }
        if let Some(s) = &facets.size {
            let _ = write!(out, "\tsize={}", range_text(s));
        }
        if !facets.ranges.is_empty() {
            let rs: Vec<String> = facets.ranges.iter().map(range_text).collect();
            let _ = write!(out, "\trange={}", rs.join(","));
        }
        if !facets.enums.is_empty() {
            let _ = write!(out, "\tenum={}", esc(&facets.enums.join("|")));
        }
        if let Some(d) = p.default.as_ref().or(p.factory_default.as_ref()) {
            let _ = write!(out, "\tdefault={}", esc(d));
        }
        if let Some(n) = &p.notify {
            let _ = write!(out, "\tnotify={n}");
        }
        if p.hidden {
            out.push_str("\thidden");
        }
        out.push('\n');
    }
    Ok(())
}

fn model_version(xml: &str) -> String {
    xml.find("<model name=\"").and_then(|i| xml[i + 12..].split('"').next()).unwrap_or("unknown").to_string()
}

fn header(out: &mut String, source: &str, vendor: Option<&str>) {
    let _ = writeln!(out, "# Generated by `dm-gen extract`; do not edit. Facts only (no descriptions).");
    let _ = writeln!(out, "# Source: {source}, Broadband Forum cwmp-data-models @35da113 (BSD-3-Clause),");
    if let Some(v) = vendor {
        let _ = writeln!(out, "#         and {v} (this project's vendor extension).");
    }
    let _ = writeln!(out, "# O path access [min= max= entries= enable= key= fkey=]   P name access type [dt= list= size= range= enum= default= notify= hidden]");
}

/// Writes the objects `wanted` of `doc` (read from `file`), in that order.
fn write_wanted(
    out: &mut String,
    doc: &Doc,
    wanted: &[&str],
    file: &str,
    types: &HashMap<String, Facets>,
) -> Result<(), GenError> {
    for want in wanted {
        let o = doc
            .objects
            .iter()
            .find(|o| o.name == *want)
            .ok_or_else(|| GenError::MissingObject { file: file.to_string(), object: want.to_string() })?;
        write_object(out, o, types)?;
    }
    Ok(())
}

/// Produces the `.dm` text from the TR-181 full XML and the vendor XML.
pub fn extract(bbf: &str, bbf_name: &str, vendor: &str, vendor_name: &str) -> Result<String, GenError> {
    let std_doc = parse(bbf, bbf_name)?;
    let vendor_doc = parse(vendor, vendor_name)?;
    let mut types = std_doc.types.clone();
    types.extend(vendor_doc.types);
    let mut out = String::new();
    header(&mut out, &format!("{bbf_name} ({})", model_version(bbf)), Some(vendor_name));
    write_wanted(&mut out, &std_doc, TR181_OBJECTS, bbf_name, &types)?;
    for o in &vendor_doc.objects {
        write_object(&mut out, o, &types)?;
    }
    Ok(out)
}

/// Produces the `.dm` text of the TR-098 gateway ([`TR098_OBJECTS`]) from the TR-098 full XML
/// (flattened and self-contained: it defines the data types it uses).
pub fn extract_tr098(xml: &str, name: &str) -> Result<String, GenError> {
    let doc = parse(xml, name)?;
    let mut out = String::new();
    header(&mut out, &format!("{name} ({})", model_version(xml)), None);
    write_wanted(&mut out, &doc, TR098_OBJECTS, name, &doc.types)?;
    Ok(out)
}

/// Produces the Rust module of the vendor extension's typed paths and enumerations
/// (`src/virtualization.rs`) from the TR-181 full XML (for the data types the extension uses)
/// and the vendor XML.
pub fn rust_module(bbf: &str, bbf_name: &str, vendor: &str, vendor_name: &str) -> Result<String, GenError> {
    let mut types = parse(bbf, bbf_name)?.types;
    let vendor_doc = parse(vendor, vendor_name)?;
    types.extend(vendor_doc.types.clone());
    rust::module(&vendor_doc, &types, vendor_name)
}
