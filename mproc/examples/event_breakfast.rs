//! Twin of seed 000 §3.3 "进程间信号传输" (the breakfast stall): the customer
//! waits on an [`Event`](mproc::Event) until the vendor sets it; then the
//! customer sets it to pay, and the vendor, waiting in turn, thanks them.
//!
//! The tutorial pulses one event (`set()` then `clear()` at once) in both
//! directions, which hangs whenever a pulse comes before the other side waits.
//! This twin keeps its lines but gives each direction an event of its own:
//! `breakfast` (vendor → customer) and `paid` (customer → vendor). The
//! customer's `is_set()` prints show the flag before and after. The vendor is
//! started once the customer has arrived (a third event, `arrived`), so the
//! customer's first line always finds the flag clear, as in the tutorial.
//! Run: `cargo run -p mproc --example event_breakfast`.

use mproc::prelude::*;

fn xiao_fan(breakfast: &Event, paid: &Event) {
    println!("vendor: cooking...");
    println!("vendor: selling...");
    println!("vendor: breakfast is ready, waiting for the customer");
    breakfast.set();
    println!("vendor: 1");
    paid.wait();
    println!("vendor: 2 (paid: {})", paid.is_set());
    breakfast.clear();
    println!("vendor: 3");
    println!("vendor: thank you, come again");
}

fn gu_ke(breakfast: &Event, paid: &Event, arrived: &Event) {
    println!("customer: ready to buy breakfast: {}", breakfast.is_set());
    arrived.set();
    breakfast.wait(); // blocks until the vendor sets it
    println!("customer: got breakfast: {}", breakfast.is_set());
    println!("customer: enjoying it: {}", breakfast.is_set());
    println!("customer: paying, delicious...");
    paid.set();
    println!("customer: 4");
    println!("customer: 5");
}

fn main() -> mproc::Result<()> {
    let breakfast = Event::new()?;
    let paid = Event::new()?;
    let arrived = Event::new()?;
    let mut xf = Process::new({
        let (b, p) = (breakfast.clone(), paid.clone());
        move || xiao_fan(&b, &p)
    });
    let mut gk = Process::new({
        let (b, p, a) = (breakfast.clone(), paid.clone(), arrived.clone());
        move || gu_ke(&b, &p, &a)
    });
    gk.start()?;
    arrived.wait();
    xf.start()?;
    gk.join()?;
    xf.join()?;
    Ok(())
}
