//! Parsing speed: a generated 2,000-instruction Dockerfile (every instruction
//! kind, flags, continuations, a heredoc) through the syntax layer and the
//! typed layer. Throughput is reported in bytes/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_parser::{Dockerfile, SyntaxTree};

/// A Dockerfile of exactly `n` instructions cycling through realistic lines.
fn generate(n: usize) -> String {
    let lines = [
        "RUN apt-get update && apt-get install -y --no-install-recommends \\\n    curl ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*",
        "COPY --chown=1000:1000 --chmod=0644 src/ /app/src/",
        "ENV PATH=/opt/bin:$PATH LANG=C.UTF-8 HOME=\"/home/app user\"",
        "ARG VERSION=1.2.3 COMMIT",
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked --network=none pip install -r requirements.txt",
        "LABEL org.opencontainers.image.source=\"https://example.com/repo\" version=${VERSION}",
        "WORKDIR /app/${VERSION}",
        "CMD [\"/app/server\", \"--port\", \"8080\"]",
        "EXPOSE 8080/tcp 9090-9099/udp",
        "HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1",
        "RUN <<EOF\nset -e\necho building\nEOF",
        "USER app:app",
    ];
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\n");
    out.push_str("FROM ${BASE} AS build\n");
    let mut count = 2;
    let mut i = 0;
    while count < n {
        if count % 500 == 0 {
            out.push_str(&format!("FROM build AS stage{count}\n"));
        } else {
            out.push_str(lines[i % lines.len()]);
            out.push('\n');
            i += 1;
        }
        count += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let src = generate(2000);
    assert_eq!(SyntaxTree::parse(&src).unwrap().nodes.len(), 2000);
    let mut group = c.benchmark_group("parse 2000 instructions");
    group.throughput(Throughput::Bytes(src.len() as u64));
    group.bench_function("syntax tree", |b| {
        b.iter(|| SyntaxTree::parse(&src).unwrap())
    });
    group.bench_function("typed stages", |b| {
        b.iter(|| Dockerfile::parse(&src).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
