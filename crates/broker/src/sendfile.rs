//! Sending a file range to a socket with `sendfile(2)`: the kernel copies from the page cache
//! to the socket, and record data never passes through user space.

use std::io;
use std::os::fd::AsFd;

use strand_storage::FileSlice;
use tokio::io::Interest;
use tokio::net::tcp::OwnedWriteHalf;

pub async fn send_slice(writer: &mut OwnedWriteHalf, slice: &FileSlice) -> io::Result<()> {
    let stream = writer.as_ref();
    let mut offset = slice.position;
    let end = slice.position + slice.len as u64;
    while offset < end {
        stream.writable().await?;
        let remaining = (end - offset) as usize;
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(
                stream.as_fd(),
                slice.file.as_fd(),
                Some(&mut offset),
                remaining,
            )
            .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                // The file is shorter than the range: it was truncated under us.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment shrank during sendfile",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
