//! `fg-origin`: a throttled HTTP/1.1 origin simulator for tests and benchmarks (being written).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    anyhow::bail!("fg-origin is not built yet")
}
