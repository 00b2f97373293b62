//! Structured data: basicList, subTemplateList and subTemplateMultiList
//! (RFC 6313 section 4.5), decoded lazily into nested values.
//!
//! Nesting is capped by `Limits::max_list_depth`: a list deeper than the cap
//! is reported as raw bytes, never recursed into.

use core::fmt;

use crate::cache::TemplateScope;
use crate::record::{read_varlen, record_len, Record};
use crate::template::{FieldSpec, VARIABLE_LENGTH};
use crate::value::{Value, ValueKind};
use crate::{ErrorKind, Protocol};

/// List semantics (RFC 6313 section 4.4).
pub fn semantic_name(semantic: u8) -> &'static str {
    match semantic {
        0 => "noneOf",
        1 => "exactlyOneOf",
        2 => "oneOrMoreOf",
        3 => "allOf",
        4 => "ordered",
        0xff => "undefined",
        _ => "unassigned",
    }
}

/// What a list contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// basicList: values of one Information Element.
    Basic { element: FieldSpec },
    /// subTemplateList: records of one template.
    SubTemplate { template_id: u16 },
    /// subTemplateMultiList: blocks of records, each block with its own template.
    SubTemplateMulti,
}

/// A decoded list header with a lazy view of its content.
#[derive(Clone, Copy)]
pub struct List<'a> {
    pub kind: ListKind,
    pub semantic: u8,
    /// The list content after its header.
    content: &'a [u8],
    scope: &'a TemplateScope,
    /// Depth of the records/values inside this list.
    depth: u8,
}

impl PartialEq for List<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.semantic == other.semantic && self.content == other.content
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("kind", &self.kind)
            .field("semantic", &semantic_name(self.semantic))
            .field("content_len", &self.content.len())
            .finish()
    }
}

impl<'a> List<'a> {
    /// Parse a list header. None when the header is malformed or the nesting cap is hit.
    pub(crate) fn parse(
        kind: ValueKind,
        bytes: &'a [u8],
        scope: &'a TemplateScope,
        parent_depth: u8,
    ) -> Option<List<'a>> {
        let depth = parent_depth.checked_add(1)?;
        if depth as usize > scope.max_list_depth {
            return None;
        }
        let semantic = *bytes.first()?;
        match kind {
            ValueKind::BasicList => {
                let raw_id = u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]);
                let length = u16::from_be_bytes([*bytes.get(3)?, *bytes.get(4)?]);
                let (enterprise, content_start) = if raw_id & 0x8000 != 0 {
                    let pen = bytes.get(5..9)?;
                    (u32::from_be_bytes([pen[0], pen[1], pen[2], pen[3]]), 9)
                } else {
                    (0, 5)
                };
                Some(List {
                    kind: ListKind::Basic {
                        element: FieldSpec::new(enterprise, raw_id & 0x7fff, length),
                    },
                    semantic,
                    content: &bytes[content_start..],
                    scope,
                    depth,
                })
            }
            ValueKind::SubTemplateList => {
                let template_id = u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]);
                Some(List {
                    kind: ListKind::SubTemplate { template_id },
                    semantic,
                    content: &bytes[3..],
                    scope,
                    depth,
                })
            }
            ValueKind::SubTemplateMultiList => Some(List {
                kind: ListKind::SubTemplateMulti,
                semantic,
                content: &bytes[1..],
                scope,
                depth,
            }),
            _ => None,
        }
    }

    /// Name of a basicList's element (IANA or enterprise name, or its id).
    pub fn element_name(&self) -> Option<std::borrow::Cow<'static, str>> {
        match self.kind {
            ListKind::Basic { element } => {
                Some(crate::template::field_naming(Protocol::Ipfix, element.field, false).0)
            }
            _ => None,
        }
    }

    /// The values of a basicList (empty for the other kinds). Stops at the
    /// first element that runs past the list.
    pub fn values(&self) -> BasicValues<'a> {
        let (kind, length) = match self.kind {
            ListKind::Basic { element } => {
                let dt = crate::template::field_naming(Protocol::Ipfix, element.field, false).2;
                (ValueKind::for_type(dt, element.length), element.length)
            }
            _ => (ValueKind::Bytes, 0),
        };
        let content = if matches!(self.kind, ListKind::Basic { .. }) {
            self.content
        } else {
            &[]
        };
        BasicValues {
            list: *self,
            kind,
            length,
            rest: content,
            pos: 0,
            failed: false,
        }
    }

    /// The records of a subTemplateList or subTemplateMultiList (empty for a basicList).
    pub fn records(&self) -> ListRecords<'a> {
        let (template_id, block_end) = match self.kind {
            ListKind::SubTemplate { template_id } => (Some(template_id), self.content.len()),
            _ => (None, 0),
        };
        let content = if matches!(self.kind, ListKind::Basic { .. }) {
            &[][..]
        } else {
            self.content
        };
        ListRecords {
            list: *self,
            content,
            pos: 0,
            block_end,
            template_id,
            done: false,
        }
    }

    /// Check the whole list decodes (every element/record fits, every template known).
    pub fn validate(&self) -> Result<(), ErrorKind> {
        match self.kind {
            ListKind::Basic { .. } => {
                let mut it = self.values();
                for _ in it.by_ref() {}
                if it.failed {
                    Err(ErrorKind::BadList)
                } else {
                    Ok(())
                }
            }
            _ => {
                for r in self.records() {
                    r?;
                }
                Ok(())
            }
        }
    }
}

/// Values of a basicList.
#[derive(Debug, Clone)]
pub struct BasicValues<'a> {
    list: List<'a>,
    kind: ValueKind,
    length: u16,
    rest: &'a [u8],
    pos: usize,
    /// Set when the content ended in the middle of an element.
    pub failed: bool,
}

impl<'a> Iterator for BasicValues<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.pos >= self.rest.len() || self.failed {
            return None;
        }
        let (start, len) = if self.length == VARIABLE_LENGTH {
            match read_varlen(self.rest, self.pos) {
                Some(x) => x,
                None => {
                    self.failed = true;
                    return None;
                }
            }
        } else {
            (self.pos, self.length as usize)
        };
        if len == 0 && self.length != VARIABLE_LENGTH {
            // Zero-length fixed elements would never advance.
            self.failed = true;
            return None;
        }
        let Some(bytes) = self.rest.get(start..start + len) else {
            self.failed = true;
            return None;
        };
        self.pos = start + len;
        Some(match self.kind {
            ValueKind::BasicList | ValueKind::SubTemplateList | ValueKind::SubTemplateMultiList => {
                match List::parse(self.kind, bytes, self.list.scope, self.list.depth) {
                    Some(l) => Value::List(l),
                    None => Value::Bytes(bytes),
                }
            }
            k => Value::decode(k, bytes),
        })
    }
}

/// Records of a subTemplateList / subTemplateMultiList.
#[derive(Debug, Clone)]
pub struct ListRecords<'a> {
    list: List<'a>,
    content: &'a [u8],
    pos: usize,
    /// End of the current block (multi lists) or of the content.
    block_end: usize,
    template_id: Option<u16>,
    done: bool,
}

impl<'a> Iterator for ListRecords<'a> {
    type Item = Result<Record<'a>, ErrorKind>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            if self.pos >= self.block_end {
                if self.list.kind != ListKind::SubTemplateMulti || self.pos >= self.content.len() {
                    self.done = true;
                    return None;
                }
                // Next subTemplateMultiList block: template id, length (incl. this 4-byte header).
                let Some(h) = self.content.get(self.pos..self.pos + 4) else {
                    self.done = true;
                    return Some(Err(ErrorKind::BadList));
                };
                let tid = u16::from_be_bytes([h[0], h[1]]);
                let len = u16::from_be_bytes([h[2], h[3]]) as usize;
                if len < 4 || self.pos + len > self.content.len() {
                    self.done = true;
                    return Some(Err(ErrorKind::BadList));
                }
                self.template_id = Some(tid);
                self.block_end = self.pos + len;
                self.pos += 4;
                continue;
            }
            let tid = self.template_id?;
            let Some(template) = self.list.scope.get(tid) else {
                self.done = true;
                return Some(Err(ErrorKind::BadList));
            };
            let block = &self.content[self.pos..self.block_end];
            match record_len(template, block) {
                Some(len) => {
                    self.pos += len;
                    return Some(Ok(Record {
                        template,
                        scope: self.list.scope,
                        data: &block[..len],
                        depth: self.list.depth,
                    }));
                }
                None => {
                    self.done = true;
                    return Some(Err(ErrorKind::BadList));
                }
            }
        }
    }
}
