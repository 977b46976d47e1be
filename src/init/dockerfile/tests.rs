use super::*;
use crate::spec::raw::RawSpec;

fn spec(text: &str) -> (String, Vec<Unsupported>) {
    let (s, u) = convert(text, "app", None, "", None, "Dockerfile").unwrap();
    toml::from_str::<RawSpec>(&s).unwrap_or_else(|e| panic!("{e}\n{s}"));
    (s, u)
}

/// The spec validates as `kiln build` reads it (base resolved later).
fn validates(text: &str, files: &[&str]) -> String {
    let (s, _) = spec(text);
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let p = dir.path().join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "x").unwrap();
    }
    fs::write(dir.path().join("kiln.toml"), &s).unwrap();
    let inputs = crate::spec::validate::Inputs::default();
    if let Err(e) = crate::spec::validate::load(&dir.path().join("kiln.toml"), &inputs) {
        panic!("{e}\n{s}");
    }
    s
}

const DEBIAN: &str = r#"# syntax=docker/dockerfile:1
ARG PYTHON_VERSION=3.12
FROM python:${PYTHON_VERSION}-slim AS runtime
ARG APP_VERSION=dev
LABEL org.opencontainers.image.version="${APP_VERSION}" maintainer='a b'
ENV PATH="/app/.venv/bin:$PATH" \
    PORT=8000
ENV MODE prod
WORKDIR /app
RUN groupadd -g 10001 appgroup && \
    useradd -u 10001 -g appgroup -m -d /home/app -s /sbin/nologin appuser && \
    mkdir -p /app/data && chown -R appuser:appgroup /app/data && \
    apt-get update
COPY --chown=appuser:appgroup --chmod=640 app.py ./
USER appuser
EXPOSE 8000 9000/UDP
VOLUME ["/app/data"]
STOPSIGNAL TERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --start-interval=1s --retries=4 CMD ["python", "-c", "print(1)"]
ENTRYPOINT python -m app --port $PORT
"#;

#[test]
fn debian_form() {
    let (s, u) = spec(DEBIAN);
    for want in [
        "base = \"python:${PYTHON_VERSION}-slim\"",
        "PYTHON_VERSION = \"3.12\"",
        "APP_VERSION = \"dev\"",
        "name = \"appuser\"",
        "uid = 10001",
        "group = \"appgroup\"",
        "home = \"/home/app\"",
        "shell = \"/sbin/nologin\"",
        "path = \"/app/data\"",
        "owner = \"appuser:appgroup\"",
        "src = \"app.py\"",
        "dest = \"/app/\"",
        "mode = \"0640\"",
        "workdir = \"/app\"",
        "# USER appuser: kiln's default",
        "expose = [\"8000\", \"9000/udp\"]",
        "volumes = [\"/app/data\"]",
        "stop-signal = \"SIGTERM\"",
        "entrypoint = [\"/bin/sh\", \"-c\", \"python -m app --port $PORT\"]",
        "PATH = \"/app/.venv/bin:${PATH}\"",
        "MODE = \"prod\"",
        "\"org.opencontainers.image.version\" = \"${APP_VERSION}\"",
        "maintainer = \"a b\"",
        "test = [\"CMD\", \"python\", \"-c\", \"print(1)\"]",
        "start-interval = \"1s\"",
        "retries = 4",
    ] {
        assert!(s.contains(want), "missing {want}:\n{s}");
    }
    assert_eq!(u.len(), 1, "{u:?}");
    assert_eq!(u[0].line, 13);
    assert!(u[0].what.contains("apt-get update"));
    validates(DEBIAN, &["app.py"]);
}

#[test]
fn alpine_form_and_stages() {
    let text = "FROM alpine:3.20 AS build\nRUN make\nFROM build AS mid\nENV A=1\nFROM alpine:3.20@sha256:0000000000000000000000000000000000000000000000000000000000000000\n\
        RUN addgroup -S app && adduser -S -D -H -G app -u 100 app\nCOPY --from=build /out /srv/\nCOPY --from=ghcr.io/astral-sh/uv:0.8 /uv /bin/uv\nCMD echo hi\n";
    let (s, u) = spec(text);
    assert!(s.contains("@sha256:0000"), "{s}");
    assert!(s.contains("image = \"${STAGE_BUILD_IMAGE}\""), "{s}");
    assert!(s.contains("STAGE_BUILD_IMAGE = "), "{s}");
    assert!(s.contains("image = \"ghcr.io/astral-sh/uv:0.8\""), "{s}");
    let (uv, _) =
        spec("ARG UV=0.8.22\nFROM scratch\nCOPY --from=ghcr.io/astral-sh/uv:$UV /uv /bin/uv\n");
    assert!(
        uv.contains("image = \"ghcr.io/astral-sh/uv:${UV}\"") && uv.contains("UV = \"0.8.22\""),
        "{uv}"
    );
    assert!(s.contains("shell = \"/sbin/nologin\""), "{s}");
    assert!(s.contains("kiln writes no home"), "{s}");
    assert!(
        s.contains("cmd = [\"/bin/sh\", \"-c\", \"echo hi\"]"),
        "{s}"
    );
    assert!(u.is_empty(), "{u:?}");
    // --target follows the chain: mid is built FROM build, whose RUN is reported.
    let (s, u) = convert(text, "app", Some("MID"), "", None, "Dockerfile").unwrap();
    assert!(
        s.contains("A = \"1\"") && s.contains("base = \"alpine:3.20\""),
        "{s}"
    );
    assert_eq!(u.iter().map(|u| u.line).collect::<Vec<_>>(), [2]);
    assert!(convert(text, "app", Some("nope"), "", None, "Dockerfile").is_err());
    assert!(convert("# nothing\n", "app", None, "", None, "Dockerfile").is_err());
}

#[test]
fn reported_not_dropped() {
    let text = "FROM --odd=1 scratch\nCOPY --badflag a /a\nADD https://x/y.tgz /y\nADD local.tar.gz /z\nADD conf /etc/conf\n\
        RUN --mount=type=cache,target=/c make\nRUN <<EOF\necho\nEOF\nHEALTHCHECK --weird CMD x\nONBUILD RUN x\nMAINTAINER me\nUSER 1:2\nHEALTHCHECK NONE\nSHELL [\"/bin/bash\", \"-c\"]\nCMD run it\n";
    let (s, u) = spec(text);
    let lines: Vec<usize> = u.iter().map(|u| u.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 6, 7, 10, 11, 12], "{u:?}");
    assert!(s.contains("src = \"conf\""), "{s}");
    assert!(s.contains("user = \"1:2\""), "{s}");
    assert!(s.contains("test = [\"NONE\"]"), "{s}");
    assert!(
        s.contains("cmd = [\"/bin/bash\", \"-c\", \"run it\"]"),
        "{s}"
    );
    assert!(u[1].what.contains("--badflag"), "{u:?}");
    // The spec's header lists each with its line.
    assert!(s.contains("#   line 7: RUN"), "{s}");
}

/// `chown -R` of a tree the base holds cannot be expressed and is said so;
/// of what the Dockerfile made itself (workdir, mkdir, copies, home) it is.
#[test]
fn chown_of_the_bases_files_is_reported() {
    let text = "FROM nginx:1\nRUN useradd -m -u 10001 web && chown -R web:web /usr/share/nginx/html && chown -R web /home/web\nWORKDIR /srv\nRUN chown -R web /srv\nCOPY site /opt/site\nRUN chown -R web /opt\n";
    let (s, u) = spec(text);
    let what: Vec<&str> = u.iter().map(|u| u.what.as_str()).collect();
    assert_eq!(what, ["chown -R web:web /usr/share/nginx/html"], "{u:?}");
    assert_eq!(u[0].line, 2);
    assert!(s.contains("owner = \"web\""), "{s}");
}

#[test]
fn escapes_and_continuations() {
    let text = "# escape=`\nFROM scratch\nLABEL a=\"x`\n  y\" b='$${c}'\nCMD [\"echo\", \"${HOME}\"]\nENV X='$y' Z=\\$HOME\n";
    let (s, _) = spec(text);
    assert!(s.contains("a = \"x  y\""), "{s}");
    assert!(
        s.contains("b = \"$$$${c}\"") || s.contains("b = \"$$${c}\""),
        "{s}"
    );
    assert!(s.contains("cmd = [\"echo\", \"$${HOME}\"]"), "{s}");
    assert!(
        s.contains("X = \"$$y\"") && s.contains("Z = \"$$HOME\""),
        "{s}"
    );
}

#[test]
fn hostile_text_stays_in_its_value() {
    let text = "FROM scratch\nLABEL \"a\\\"]\\nb\"=\"\\u001b[2J\x1b[2J\" c=\"\"\"\nUSER \"x\ny\"\nCMD [\"\\n[image]\"]\nRUN echo \x1b[31m\u{202e} && rm -rf /\n";
    let (s, u) = spec(text);
    assert!(
        !s.contains('\x1b')
            || s.lines()
                .all(|l| !l.starts_with('#') || !l.contains('\x1b')),
        "{s}"
    );
    assert!(u.iter().all(|u| !u.what.is_empty()));
}

/// Odd inputs: never a panic, always TOML that parses as a spec.
#[test]
fn fuzzish() {
    let parts = [
        "FROM ",
        "from a AS b\n",
        "RUN ",
        "useradd ",
        "-u ",
        "adduser -S -G ",
        "&& ",
        "\\\n",
        "`\n",
        "# escape=`\n",
        "COPY ",
        "--from=",
        "--chown=",
        "a:b ",
        "/x ",
        ". ",
        "\"",
        "'",
        "$",
        "${",
        "}",
        "[",
        "]",
        "\n",
        "<<EOF\n",
        "EOF\n",
        "HEALTHCHECK ",
        "CMD ",
        "NONE",
        "--retries=x ",
        "ENV ",
        "=",
        "LABEL ",
        "ARG ",
        "WORKDIR ",
        "..",
        "USER ",
        "é",
        "\u{202e}",
        "\x00",
        "\r\n",
        "EXPOSE ",
        "STOPSIGNAL ",
        "mkdir -p ",
        "chown -R ",
        "chmod 7 ",
        "groupadd -g ",
        "10001 ",
        "--target ",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        let mut text = String::from("FROM x\n");
        for _ in 0..(seed % 40) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(parts[(seed % parts.len() as u64) as usize]);
        }
        if let Ok((s, _)) = convert(&text, "app", None, "", None, "Dockerfile") {
            if let Err(e) = toml::from_str::<RawSpec>(&s) {
                panic!("{e}\nfrom:\n{text:?}\nspec:\n{s}");
            }
        }
    }
}

/// Every prefix of every fixture Dockerfile (cut anywhere, mid-line and
/// mid-quote too): never a panic, always a spec that parses.
#[test]
fn truncated_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dockerfiles");
    for entry in fs::read_dir(root).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path().join("Dockerfile")).unwrap();
        let cuts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(3).collect();
        for cut in cuts {
            let part = &text[..cut];
            if let Ok((s, _)) = convert(part, "app", None, "", None, "Dockerfile") {
                toml::from_str::<RawSpec>(&s).unwrap_or_else(|e| panic!("{e}\n{part}\n{s}"));
            }
        }
    }
}
