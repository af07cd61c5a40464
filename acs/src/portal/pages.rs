//! The web form's HTML: plain forms that work without JavaScript, labelled fields, messages
//! next to the field they are about, readable on a phone.

use std::fmt::Write as _;

use super::forms::{Field, FormState, SECURITY_MODES};

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}\
header{background:#0b4f6c;color:#fff;padding:.8rem 1rem}header h1{font-size:1.2rem;margin:0}\
nav{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center;margin-top:.5rem}\
nav a{color:#fff;padding:.3rem .6rem;border-radius:.3rem;text-decoration:none}\
nav a[aria-current=page]{background:#ffffff33}nav form{margin:0 0 0 auto}\
nav button{background:none;border:1px solid #fff;color:#fff;padding:.3rem .6rem;border-radius:.3rem}\
main{max-width:40rem;margin:0 auto;padding:1rem}\
label{display:block;font-weight:600;margin-top:1rem}\
input[type=text],input[type=password],select,textarea{width:100%;box-sizing:border-box;font-size:1rem;padding:.5rem;border:1px solid #888;border-radius:.3rem}\
input[type=checkbox]{transform:scale(1.4);margin:.6rem}\
.err{color:#a40000;margin:.2rem 0}.bad{border-color:#a40000!important;border-width:2px!important}\
button.primary{margin-top:1.2rem;font-size:1rem;padding:.6rem 1.2rem;background:#0b4f6c;color:#fff;border:0;border-radius:.3rem}\
:focus{outline:3px solid #f0a500;outline-offset:2px}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.4rem;border-bottom:1px solid #ccc}\
.note{background:#fff;border-left:4px solid #0b4f6c;padding:.6rem}.fail{border-left-color:#a40000}\
.ok{border-left-color:#1a7f37}";

/// A whole page. `nav` is the current page's path when logged in (the menu shows), `csrf` the
/// session's token (for the log-out form).
pub fn page(title: &str, nav: Option<(&str, &str)>, body: &str, refresh: Option<u32>) -> String {
    let mut h = String::with_capacity(4096);
    h.push_str("<!doctype html><html lang=en><head><meta charset=utf-8>");
    h.push_str("<meta name=viewport content=\"width=device-width, initial-scale=1\">");
    if let Some(s) = refresh {
        let _ = write!(h, "<meta http-equiv=refresh content=\"{s}\">");
    }
    let _ = write!(
        h,
        "<title>{} · My gateway</title><style>{STYLE}</style></head><body><header><h1>My gateway</h1>",
        esc(title)
    );
    if let Some((current, csrf)) = nav {
        h.push_str("<nav aria-label=Main>");
        for (href, label) in [("/", "Status"), ("/lan", "LAN and DHCP"), ("/wifi", "Wi-Fi")] {
            let cur = if href == current { " aria-current=page" } else { "" };
            let _ = write!(h, "<a href=\"{href}\"{cur}>{label}</a>");
        }
        let _ = write!(
            h,
            "<form method=post action=/logout><input type=hidden name=csrf value=\"{}\"><button type=submit>Log out</button></form>",
            esc(csrf)
        );
        h.push_str("</nav>");
    }
    let _ = write!(h, "</header><main><h2>{}</h2>{body}</main></body></html>", esc(title));
    h
}

/// The log-in page.
pub fn login(csrf: &str, user: &str, error: Option<&str>) -> String {
    let mut b = String::new();
    if let Some(e) = error {
        let _ = write!(b, "<p class=\"note fail\" role=alert>{}</p>", esc(e));
    }
    let _ = write!(
        b,
        "<form method=post action=/login><input type=hidden name=csrf value=\"{}\">\
         <label for=username>Subscriber id</label><input type=text id=username name=username autocomplete=username required value=\"{}\">\
         <label for=password>Password</label><input type=password id=password name=password autocomplete=current-password required>\
         <button class=primary type=submit>Log in</button></form>",
        esc(csrf),
        esc(user)
    );
    page("Log in", None, &b, None)
}

fn input(b: &mut String, f: &Field, state: &FormState) {
    let value = state.values.get(f.name).map(String::as_str).unwrap_or("");
    let err = state.errors.get(f.name);
    let (cls, described) = match err {
        Some(_) => (" class=bad aria-invalid=true", format!(" aria-describedby=\"{}-err\"", f.name)),
        None => ("", String::new()),
    };
    match f.name {
        "wifi_enable" => {
            let checked = if value.is_empty() { "" } else { " checked" };
            let _ = write!(
                b,
                "<label for={n}><input type=checkbox id={n} name={n}{checked}> {}</label>",
                esc(f.label),
                n = f.name
            );
        }
        "security" => {
            let _ = write!(
                b,
                "<label for={n}>{}</label><select id={n} name={n}{cls}{described}>",
                esc(f.label),
                n = f.name
            );
            for (mode, text) in SECURITY_MODES {
                let sel = if *mode == value { " selected" } else { "" };
                let _ = write!(b, "<option value=\"{mode}\"{sel}>{}</option>", esc(text));
            }
            b.push_str("</select>");
        }
        "static_leases" => {
            let _ = write!(
                b,
                "<label for={n}>{}</label><textarea id={n} name={n} rows=4{cls}{described}>{}</textarea>",
                esc(f.label),
                esc(value),
                n = f.name
            );
        }
        "passphrase" => {
            let _ = write!(
                b,
                "<label for={n}>{}</label><input type=password id={n} name={n} autocomplete=new-password{cls}{described} value=\"{}\">",
                esc(f.label),
                esc(value),
                n = f.name
            );
        }
        _ => {
            let _ = write!(
                b,
                "<label for={n}>{}</label><input type=text id={n} name={n}{cls}{described} value=\"{}\">",
                esc(f.label),
                esc(value),
                n = f.name
            );
        }
    }
    if let Some(e) = err {
        let _ = write!(b, "<p class=err id=\"{}-err\">{}</p>", f.name, esc(e));
    }
}

/// A settings page (LAN and DHCP, or Wi-Fi).
pub fn settings(
    title: &str,
    path: &str,
    csrf: &str,
    fields: &[Field],
    state: &FormState,
    notice: Option<&str>,
) -> String {
    let mut b = String::new();
    if let Some(n) = notice {
        let _ = write!(b, "<p class=note>{}</p>", esc(n));
    }
    if !state.errors.is_empty() {
        let _ = write!(
            b,
            "<p class=\"note fail\" role=alert>Nothing was changed: {} to correct below.</p>",
            if state.errors.len() == 1 { "one field".to_string() } else { format!("{} fields", state.errors.len()) }
        );
    }
    let _ =
        write!(b, "<form method=post action={path} novalidate><input type=hidden name=csrf value=\"{}\">", esc(csrf));
    for f in fields {
        input(&mut b, f, state);
    }
    b.push_str("<button class=primary type=submit>Save and apply</button></form>");
    page(title, Some((path, csrf)), &b, None)
}
