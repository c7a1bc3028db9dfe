//! [`Answer`]: what a store gives back, at once or later.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

/// A boxed, `Send` future, the return type of the store traits (they are used
/// as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store's answer: ready now (an in-memory store: no allocation, no
/// future), or later (a network store). The decision polls either the same
/// way, so each of its steps is written once.
///
/// ```
/// use secure_runtime::Answer;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let now: Answer<'_, u32> = Answer::Ready(1);
/// let later: Answer<'_, u32> = Answer::later(async { 2 });
/// assert_eq!(now.await + later.await, 3);
/// # });
/// ```
pub enum Answer<'a, T> {
    /// Known without I/O.
    Ready(T),
    /// Still to come.
    Later(BoxFuture<'a, T>),
    /// Taken: polled again after it answered.
    #[doc(hidden)]
    Taken,
}

impl<'a, T> Answer<'a, T> {
    /// An answer that needs I/O.
    pub fn later(f: impl Future<Output = T> + Send + 'a) -> Self {
        Answer::Later(Box::pin(f))
    }

    /// The answer, if it is ready (without I/O).
    pub fn now(self) -> Result<T, Self> {
        match self {
            Answer::Ready(v) => Ok(v),
            other => Err(other),
        }
    }
}

impl<'a, T> From<BoxFuture<'a, T>> for Answer<'a, T> {
    fn from(f: BoxFuture<'a, T>) -> Self {
        Answer::Later(f)
    }
}

impl<T: Unpin> Future for Answer<'_, T> {
    type Output = T;

    /// # Panics
    /// Never on a request path: polling an answer again after it resolved is
    /// a bug of the caller, and it stays pending instead of panicking.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        match this {
            Answer::Later(f) => f.as_mut().poll(cx),
            Answer::Ready(_) => match std::mem::replace(this, Answer::Taken) {
                Answer::Ready(v) => Poll::Ready(v),
                _ => Poll::Pending,
            },
            Answer::Taken => Poll::Pending,
        }
    }
}
