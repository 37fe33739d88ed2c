//! Objects of scalars and members that hold an object, read in one pass
//! each instead of a trip per token through the lexer's state machine:
//! tag objects and bulk results are such objects, and most are written
//! with the same members in the same order, matched as bytes. Anything
//! else is declined with the lexer untouched, for the token path to read.

use super::{Expect, JsonStr, Lexer, Token};
use crate::config::MAX_JSON_DEPTH;

/// An object being matched by [`Lexer::shaped_object`]: its members' bytes
/// up to each value are known in advance, so only the values are read.
pub struct Shaped<'l, 'a> {
    lexer: &'l mut Lexer<'a>,
}

/// Proof that a [`Shaped`] object was matched to its closing brace.
pub struct Closed(());

impl<'a> Shaped<'_, 'a> {
    /// The member that `piece` begins (its `,` after the first member, its
    /// quoted name and its `:`, with no white space around them) and its
    /// value, when the text goes on with `piece` and a scalar. The lexer
    /// takes `piece` as such without looking into it: the tests of each
    /// reading check it against the flat-object reading.
    #[inline(always)]
    pub fn value(&mut self, piece: &[u8]) -> Option<Token<'a>> {
        self.lexer.literal_bytes(piece)?;
        self.lexer.scalar_value()
    }

    /// [`Shaped::value`] for a member written only sometimes: `Some(None)`,
    /// nothing consumed, when the text does not go on with `piece`.
    #[inline(always)]
    pub fn optional_value(&mut self, piece: &[u8]) -> Option<Option<Token<'a>>> {
        if self.lexer.literal_bytes(piece).is_none() {
            return Some(None);
        }
        self.lexer.scalar_value().map(Some)
    }

    /// The object's `}`, when the text goes on with it.
    #[inline(always)]
    pub fn end(self) -> Option<Closed> {
        self.lexer.literal_bytes(b"}")?;
        Some(Closed(()))
    }
}

impl<'a> Lexer<'a> {
    /// Reads the rest of an object whose `{` was just returned, when every
    /// member's value is a scalar: calls `member` with each name and value
    /// in order and consumes the closing `}`, as the same calls of
    /// [`Lexer::next_token`] would, without their per-token dispatch.
    /// Anything else (a container, an error, the end of the text) leaves
    /// the lexer where it was and returns `false`; `member` may have seen
    /// the members before that, so the caller forgets them and reads the
    /// object token by token, which says exactly what is wrong.
    #[inline]
    pub fn flat_object<F>(&mut self, mut member: F) -> bool
    where
        F: FnMut(JsonStr<'a>, Token<'a>),
    {
        // Only the position and what is expected move until the `}`,
        // where the object closes.
        let (start, expect) = (self.pos, self.expect);
        if self.flat_members(&mut member).is_some() {
            return true;
        }
        self.pos = start;
        self.expect = expect;
        false
    }

    /// Reads the next member of the open object when its value is an
    /// object: returns its name with the lexer just inside that object, as
    /// [`Lexer::next_token`] and [`Lexer::next_value`] would leave it.
    /// Anything else leaves the lexer where it was and returns `None`.
    #[inline]
    pub fn object_member(&mut self) -> Option<JsonStr<'a>> {
        let start = self.pos;
        let name = self.object_member_name();
        if name.is_none() {
            self.pos = start;
        }
        name
    }

    /// Reads the rest of an object whose `{` was just returned the way
    /// one producer always writes it: `read` matches its members in order
    /// with [`Shaped::value`], the bytes up to each value known in advance,
    /// and its end with [`Shaped::end`]. It reads what the same object read
    /// token by token would give, for the objects it matches; anything
    /// else (`read` returns `None`) leaves the lexer where it was, for
    /// [`Lexer::flat_object`] to read.
    #[inline(always)]
    pub fn shaped_object<T, F>(&mut self, read: F) -> Option<T>
    where
        F: FnOnce(Shaped<'_, 'a>) -> Option<(T, Closed)>,
    {
        let (start, expect) = (self.pos, self.expect);
        if expect != Expect::FirstKey {
            return None;
        }
        if let Some((read, Closed(()))) = read(Shaped { lexer: self }) {
            self.close();
            return Some(read);
        }
        self.pos = start;
        self.expect = expect;
        None
    }

    /// A value that is a scalar, read at its first byte; `None` at a
    /// container, an error or the end of the text.
    #[inline(always)]
    fn scalar_value(&mut self) -> Option<Token<'a>> {
        if let None | Some(b'{' | b'[') = self.peek() {
            return None;
        }
        self.value().ok()
    }

    #[inline(always)]
    fn object_member_name(&mut self) -> Option<JsonStr<'a>> {
        if self.open & 1 == 0 || self.depth >= MAX_JSON_DEPTH {
            return None;
        }
        self.skip_ws();
        match self.expect {
            Expect::FirstKey => {}
            Expect::Separator if self.peek() == Some(b',') => {
                self.pos += 1;
                self.skip_ws();
            }
            _ => return None,
        }
        let name = self.member_name()?;
        if self.peek() != Some(b'{') {
            return None;
        }
        self.pos += 1;
        self.open(true).ok()?;
        Some(name)
    }

    /// At a member's opening quote: its name, with the `:` and the white
    /// space around it consumed.
    #[inline(always)]
    fn member_name(&mut self) -> Option<JsonStr<'a>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let name = self.string().ok()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return None;
        }
        self.pos += 1;
        self.skip_ws();
        Some(name)
    }

    #[inline(always)]
    fn flat_members<F>(&mut self, member: &mut F) -> Option<()>
    where
        F: FnMut(JsonStr<'a>, Token<'a>),
    {
        if self.expect != Expect::FirstKey {
            return None;
        }
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.close();
            return Some(());
        }
        loop {
            let name = self.member_name()?;
            member(name, self.scalar_value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.close();
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}
