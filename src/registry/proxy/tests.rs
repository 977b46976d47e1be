use super::*;

fn settings(vars: &[(&str, &str)]) -> Settings {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .unwrap()
}

fn via(s: &Settings, url: &str) -> Option<String> {
    match s.route(&Url::parse(url).unwrap()) {
        Route::Through(p) => Some(format!("{} {}", p.var, p.shown())),
        Route::Direct(_) => None,
    }
}

#[test]
fn uppercase_wins_and_empty_counts_as_unset() {
    let s = settings(&[
        ("HTTPS_PROXY", "http://upper:3128"),
        ("https_proxy", "http://lower:3128"),
    ]);
    assert_eq!(
        via(&s, "https://r.example/").as_deref(),
        Some("HTTPS_PROXY http://upper:3128")
    );
    let s = settings(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:3128")]);
    assert_eq!(
        via(&s, "https://r.example/").as_deref(),
        Some("https_proxy http://lower:3128")
    );
    let s = settings(&[
        ("NO_PROXY", ""),
        ("no_proxy", "r.example"),
        ("HTTPS_PROXY", "p:1"),
    ]);
    assert_eq!(via(&s, "https://r.example/"), None);
}

#[test]
fn each_scheme_has_its_own_variable() {
    let s = settings(&[("HTTP_PROXY", "http://plain:8080")]);
    assert_eq!(via(&s, "https://r.example/"), None);
    assert_eq!(
        via(&s, "http://r.example/").as_deref(),
        Some("HTTP_PROXY http://plain:8080")
    );
    // Not read, as in Go.
    let s = settings(&[("ALL_PROXY", "http://all:1")]);
    assert!(s.is_empty());
    // Under CGI, HTTP_PROXY may be a request header: not used.
    let s = settings(&[
        ("HTTP_PROXY", "http://plain:8080"),
        ("HTTPS_PROXY", "http://tls:8080"),
        ("REQUEST_METHOD", "GET"),
    ]);
    assert_eq!(via(&s, "http://r.example/"), None);
    assert!(via(&s, "https://r.example/").is_some());
}

#[test]
fn proxy_urls_parse_and_show_no_credentials() {
    let s = settings(&[("HTTPS_PROXY", "http://user:s3cret@proxy.corp:3128/ignored")]);
    let shown = via(&s, "https://r.example/").unwrap();
    assert_eq!(shown, "HTTPS_PROXY http://proxy.corp:3128");
    let s = settings(&[("HTTPS_PROXY", "10.1.2.3:3128")]);
    assert_eq!(
        via(&s, "https://r.example/").as_deref(),
        Some("HTTPS_PROXY http://10.1.2.3:3128")
    );
    let s = settings(&[("HTTPS_PROXY", "https://proxy.corp")]);
    assert_eq!(
        via(&s, "https://r.example/").as_deref(),
        Some("HTTPS_PROXY https://proxy.corp:443")
    );
    let s = settings(&[("HTTPS_PROXY", "http://proxy.corp")]);
    assert_eq!(
        via(&s, "https://r.example/").as_deref(),
        Some("HTTPS_PROXY http://proxy.corp:80")
    );
}

#[test]
fn bad_proxy_urls_name_the_variable_not_its_value() {
    for bad in [
        "socks5://user:s3cret@proxy:1080",
        "ftp://user:s3cret@proxy",
        "http://user:s3cret@:3128",
        "http://user:s3cret@[bad/",
    ] {
        let err =
            Settings::from_vars(|n| (n == "https_proxy").then(|| bad.to_string())).unwrap_err();
        let text = format!("{err} {}", err.hint().unwrap_or(""));
        assert!(text.contains("https_proxy"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}

#[test]
fn loopback_is_never_proxied() {
    let s = settings(&[("HTTPS_PROXY", "p:1"), ("HTTP_PROXY", "p:1")]);
    for url in [
        "https://localhost:5000/",
        "http://LOCALHOST/",
        "https://127.0.0.1/",
        "http://127.8.9.10:5000/",
        "https://[::1]:5000/",
        "https://[::ffff:127.0.0.1]/",
    ] {
        assert_eq!(via(&s, url), None, "{url}");
    }
    assert!(via(&s, "https://127.example/").is_some());
    assert!(via(&s, "https://localhost.example/").is_some());
}

#[test]
fn no_proxy_names_match_themselves_and_subdomains() {
    let cases = [
        // (NO_PROXY, host, bypassed)
        ("example.com", "example.com", true),
        ("example.com", "r.example.com", true),
        ("example.com", "a.b.example.com", true),
        ("example.com", "notexample.com", false),
        ("example.com", "example.com.evil", false),
        (".example.com", "r.example.com", true),
        (".example.com", "example.com", false),
        ("*.example.com", "r.example.com", true),
        ("*.example.com", "example.com", false),
        ("*example.com", "r.example.com", false),
        ("Example.COM", "r.example.com", true),
        (" other.org , example.com ", "r.example.com", true),
        (".test", "registry.test", true),
        ("registry.test", "registry.test", true),
        ("other.test", "registry.test", false),
        ("*", "anything.at.all", true),
        ("*", "192.0.2.1", true),
        ("", "example.com", false),
        (",,", "example.com", false),
    ];
    for (list, host, want) in cases {
        let got = NoProxy::parse(list).matches(host, 443);
        assert_eq!(got, want, "NO_PROXY={list:?} host={host}");
    }
}

#[test]
fn no_proxy_ips_cidrs_and_ports() {
    let cases = [
        ("192.0.2.10", "192.0.2.10", 443, true),
        ("192.0.2.10", "192.0.2.11", 443, false),
        ("192.0.2.0/24", "192.0.2.77", 443, true),
        ("192.0.2.0/24", "192.0.3.1", 443, false),
        ("10.0.0.0/8", "10.200.1.1", 5000, true),
        ("0.0.0.0/0", "203.0.113.5", 443, true),
        ("2001:db8::/32", "[2001:db8::1]", 443, true),
        ("2001:db8::/32", "[2001:db9::1]", 443, false),
        ("2001:db8::1", "[2001:db8::1]", 443, true),
        ("[2001:db8::1]:5000", "[2001:db8::1]", 5000, true),
        ("[2001:db8::1]:5000", "[2001:db8::1]", 443, false),
        ("192.0.2.10:5000", "192.0.2.10", 5000, true),
        ("192.0.2.10:5000", "192.0.2.10", 443, false),
        ("registry.test:5000", "registry.test", 5000, true),
        ("registry.test:5000", "registry.test", 443, false),
        (".test:443", "registry.test", 443, true),
        // A CIDR judges addresses as written, not names: nothing is resolved.
        ("192.0.2.0/24", "registry.test", 443, false),
        // Malformed entries are left out.
        ("registry.test:port", "registry.test", 443, false),
        ("192.0.2.0/40", "192.0.2.1", 443, false),
        (":443", "registry.test", 443, false),
    ];
    for (list, host, port, want) in cases {
        let got = NoProxy::parse(list).matches(host, port);
        assert_eq!(got, want, "NO_PROXY={list:?} {host}:{port}");
    }
}

#[test]
fn default_ports_count_for_no_proxy() {
    let s = settings(&[
        ("HTTPS_PROXY", "p:1"),
        ("HTTP_PROXY", "p:1"),
        ("NO_PROXY", "a.test:443,b.test:80"),
    ]);
    assert_eq!(via(&s, "https://a.test/"), None);
    assert!(via(&s, "https://a.test:5000/").is_some());
    assert_eq!(via(&s, "http://b.test/"), None);
    assert!(via(&s, "https://b.test/").is_some());
}
