//! Resolves one `FROM` source and prints its config and layers:
//! `cargo run -p cast-oci --example resolve -- SOURCE [--platform os/arch[/variant]] [--offline] [--insecure HOST]`.
//! Errors are printed with their whole cause chain.

use std::error::Error as _;

use cast_oci::{Platform, ResolveOptions, Resolver};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = ResolveOptions::default();
    let mut source = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--offline" => opts.offline = true,
            "--platform" => {
                opts.platform =
                    Platform::parse(&args.next().unwrap_or_default()).unwrap_or_else(|e| fail(&e))
            }
            "--insecure" => opts.client.insecure_registries.extend(args.next()),
            _ => source = Some(a),
        }
    }
    let Some(source) = source else {
        eprintln!(
            "usage: resolve SOURCE [--platform os/arch[/variant]] [--offline] [--insecure HOST]"
        );
        std::process::exit(2);
    };
    let resolver = Resolver::with_default_cache(opts).unwrap_or_else(|e| fail(&e));
    let t = std::time::Instant::now();
    let image = resolver.resolve_str(&source).unwrap_or_else(|e| fail(&e));
    println!("source    {}", image.source);
    println!(
        "manifest  {:?}",
        image.manifest_digest.map(|d| d.to_string())
    );
    println!("config    {:#?}", image.config);
    for l in &image.layers {
        println!(
            "layer     {} {:?} {} bytes {}",
            l.digest,
            l.compression,
            l.size,
            l.path.display()
        );
    }
    eprintln!("resolved in {:?}", t.elapsed());
}

fn fail(e: &cast_oci::Error) -> ! {
    eprintln!("error: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        eprintln!("  caused by: {c}");
        cause = c.source();
    }
    std::process::exit(1);
}
