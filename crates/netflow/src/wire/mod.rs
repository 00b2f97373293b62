//! Wire formats, one file per format: zero-copy views over `&[u8]` with the
//! byte range of every field named in one place, one length check in
//! `new_checked` after which no accessor can panic, and a plain representation
//! (`*Header` structs) that parses from and emits into bytes symmetrically.

pub mod ipfix;
pub mod set;
pub mod v1;
pub mod v5;
pub mod v7;
pub mod v9;

/// A byte range within a header.
pub type Field = core::ops::Range<usize>;

/// Big-endian integers a header field can hold (u8, u16, u32).
pub trait BeInt: Sized + Copy {
    fn read(b: &[u8]) -> Self;
    fn write(self, b: &mut [u8]);
}

macro_rules! be_int {
    ($t:ty, $n:expr) => {
        impl BeInt for $t {
            #[inline(always)]
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                <$t>::from_be_bytes(a)
            }
            #[inline(always)]
            fn write(self, b: &mut [u8]) {
                b[..$n].copy_from_slice(&self.to_be_bytes());
            }
        }
    };
}
be_int!(u8, 1);
be_int!(u16, 2);
be_int!(u32, 4);

/// Defines a fixed-size header: a `field` module with each field's byte range,
/// a zero-copy view `$view<T>` and a representation struct `$repr`.
macro_rules! fixed_header {
    (
        $(#[$doc:meta])*
        view $view:ident, repr $repr:ident, len $len:expr,
        { $( $(#[$fdoc:meta])* $name:ident : $ty:ty = $start:expr ),* $(,)? }
    ) => {
        /// Byte ranges of the header fields.
        pub mod field {
            #![allow(non_upper_case_globals)]
            use crate::wire::Field;
            $( pub const $name: Field = $start..($start + core::mem::size_of::<$ty>()); )*
            /// Header length in bytes.
            pub const HEADER_LEN: usize = $len;
        }

        /// Zero-copy view of the header at the start of a buffer.
        #[derive(Debug, Clone, Copy)]
        pub struct $view<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $view<T> {
            /// Wrap without checking the length; accessors may panic on a short buffer.
            pub fn new_unchecked(buffer: T) -> Self {
                $view { buffer }
            }
            /// Wrap after checking the buffer holds a whole header.
            pub fn new_checked(buffer: T) -> Result<Self, crate::Error> {
                let len = buffer.as_ref().len();
                if len < field::HEADER_LEN {
                    return Err(crate::Error::truncated(0, field::HEADER_LEN, len));
                }
                Ok($view { buffer })
            }
            pub fn into_inner(self) -> T {
                self.buffer
            }
            $(
                $(#[$fdoc])*
                #[inline]
                pub fn $name(&self) -> $ty {
                    <$ty as crate::wire::BeInt>::read(&self.buffer.as_ref()[field::$name])
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            /// Set the field at `range` (one of the `field` constants).
            #[inline]
            pub fn set<V: crate::wire::BeInt>(&mut self, range: crate::wire::Field, value: V) {
                value.write(&mut self.buffer.as_mut()[range]);
            }
        }

        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $repr {
            $( $(#[$fdoc])* pub $name: $ty, )*
        }

        impl $repr {
            /// Header length in bytes.
            pub const LEN: usize = field::HEADER_LEN;

            /// Parse from the start of `bytes`.
            pub fn parse(bytes: &[u8]) -> Result<Self, crate::Error> {
                let v = $view::new_checked(bytes)?;
                Ok($repr { $( $name: v.$name(), )* })
            }

            /// Write into the start of `buf` (at least `LEN` bytes).
            pub fn emit(&self, buf: &mut [u8]) {
                let mut v = $view::new_unchecked(buf);
                $( v.set(field::$name, self.$name); )*
            }

            /// The header as bytes.
            pub fn to_bytes(&self) -> [u8; $len] {
                let mut b = [0u8; $len];
                self.emit(&mut b);
                b
            }
        }
    };
}

pub(crate) use fixed_header;

#[cfg(test)]
mod tests {
    use super::Field;

    /// The ranges the typed record view of `$m` gives the fields named in its
    /// `RECORD_LAYOUT` (the names v1, v5 and v7 share).
    macro_rules! view_fields {
        ($m:ident) => {{
            use super::$m::record::field as f;
            [
                ("IPV4_SRC_ADDR", f::src_addr),
                ("IPV4_DST_ADDR", f::dst_addr),
                ("NEXT_HOP", f::next_hop),
                ("INPUT", f::input),
                ("OUTPUT", f::output),
                ("IN_PACKETS", f::packets),
                ("IN_OCTETS", f::octets),
                ("FIRST_SWITCHED", f::first),
                ("LAST_SWITCHED", f::last),
                ("SRC_PORT", f::src_port),
                ("DST_PORT", f::dst_port),
                ("TCP_FLAGS", f::tcp_flags),
                ("PROTO", f::proto),
                ("TOS", f::tos),
            ]
        }};
    }

    /// The generic decoder walks `layout`; the typed view names the same
    /// ranges: every field of `view` starts where the table puts it.
    fn check(layout: &[(&str, Option<u16>, u16)], view: &[(&str, Field)], record_len: usize) {
        let mut offset = 0usize;
        for (name, _, len) in layout {
            let len = *len as usize;
            if let Some((_, range)) = view.iter().find(|(n, _)| n == name) {
                assert_eq!(*range, offset..offset + len, "{name}");
            }
            offset += len;
        }
        assert_eq!(offset, record_len);
        for (name, _) in view {
            assert!(
                layout.iter().any(|(n, _, _)| n == name),
                "{name} not in the table"
            );
        }
    }

    #[test]
    fn record_views_agree_with_the_layout_tables() {
        check(
            super::v1::RECORD_LAYOUT,
            &view_fields!(v1),
            super::v1::RECORD_LEN,
        );
        check(
            super::v5::RECORD_LAYOUT,
            &view_fields!(v5),
            super::v5::RECORD_LEN,
        );
        check(
            super::v7::RECORD_LAYOUT,
            &view_fields!(v7),
            super::v7::RECORD_LEN,
        );
        assert_eq!(super::v1::record::field::HEADER_LEN, super::v1::RECORD_LEN);
        assert_eq!(super::v5::record::field::HEADER_LEN, super::v5::RECORD_LEN);
        assert_eq!(super::v7::record::field::HEADER_LEN, super::v7::RECORD_LEN);
    }
}
