//! Twin of seed 003 "subprocess" and "用Popen类创建进程": run external programs,
//! feed their input, read their output and exit code — `std::process::Command`
//! does what Python's `subprocess` module does.
//!
//! The tutorial's child programs are `nslookup` (which needs a network) and
//! small Python scripts (`protest.py` prints `Hello world`; `protest9.py` adds
//! one to the first number of a line). To run anywhere, this example is its own
//! child program: started with `protest`, `protest9` or `lookup` as argument,
//! it plays that part. Only `uname` is a real external command.
//! Run: `cargo run -p mproc --example subprocess`.

use std::io::{BufRead, Write};
use std::process::{Command, ExitStatus, Stdio};

/// This program, started as child program `part`.
fn child(part: &str) -> std::io::Result<Command> {
    let mut c = Command::new(std::env::current_exe()?);
    c.arg(part);
    Ok(c)
}

/// `subprocess.check_call`: an error unless the exit code is 0.
fn check(status: ExitStatus) -> std::io::Result<ExitStatus> {
    if status.success() {
        Ok(status)
    } else {
        Err(std::io::Error::other(format!("CalledProcessError: {status}")))
    }
}

/// Writes `input` to the child's stdin, closes it, and collects the output:
/// Python's `Popen.communicate(input)`.
fn communicate(mut cmd: Command, input: &str) -> std::io::Result<(String, String, ExitStatus)> {
    let mut p = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut stdin = p.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes())?;
    drop(stdin); // end of input
    let out = p.wait_with_output()?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    ))
}

fn main() -> std::io::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("protest") => {
            println!("Hello world");
            return Ok(());
        }
        Some("protest9") => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let mut a: Vec<String> = line.trim_end().split(' ').map(str::to_owned).collect();
            a[0] = (a[0].parse::<i64>().unwrap_or(0) + 1).to_string();
            println!("{}", a.join(" "));
            return Ok(());
        }
        Some("lookup") => {
            // An interactive program reading commands until `exit`.
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if line == "exit" {
                    break;
                }
                println!("> {line}");
            }
            return Ok(());
        }
        _ => {}
    }

    // subprocess.call(['nslookup', 'www.python.org'])
    println!("$ uname -s");
    let r = Command::new("uname").arg("-s").status()?;
    println!("Exit code: {}", r.code().unwrap_or(-1));

    // Popen(['nslookup'], stdin=PIPE, ...).communicate(b'set q=mx\npython.org\nexit\n')
    println!("$ lookup");
    let (output, _err, status) = communicate(child("lookup")?, "set q=mx\npython.org\nexit\n")?;
    print!("{output}");
    println!("Exit code: {}", status.code().unwrap_or(-1));
    println!();

    // demon_subprocess.py: call, check_call, getstatusoutput, getoutput, check_output.
    println!("call() test: {}", child("protest")?.status()?.code().unwrap_or(-1));
    println!();
    println!("check_call() test: {}", check(child("protest")?.status()?)?.code().unwrap_or(-1));
    println!();
    let out = child("protest")?.output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    println!("getstatusoutput() test: ({}, {text:?})", out.status.code().unwrap_or(-1));
    println!();
    println!("getoutput() test: {text}");
    println!();
    println!("check_output() test: {:?}", String::from_utf8_lossy(&child("protest")?.output()?.stdout));

    // demon_Popen.py: feed stdin, read stdout and stderr.
    let (out, err, _) = communicate(child("protest9")?, "41 strings are from stdin.\n")?;
    println!();
    println!("STDOUT:");
    print!("{out}");
    println!("STDERR:");
    print!("{err}");

    // demon_communicate.py: five processes in a chain, each one's output the
    // next one's input (the tutorial's version fails with an IndexError; this
    // is what it meant to do).
    let psum = 5;
    let mut text = "0 bouquet of flowers!\n".to_owned();
    println!();
    for _ in 0..psum {
        let (out, _, _) = communicate(child("protest9")?, &text)?;
        print!("{out}");
        text = out;
    }
    println!("Sum of Processes : {psum}");
    Ok(())
}
