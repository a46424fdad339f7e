//! Bounded XML reader: quick-xml events into a small element tree.
//!
//! Enforces the depth and element caps while reading, rejects DOCTYPE outright and resolves
//! only the five predefined entities and character references (no resolver is ever installed).
//! Text is gathered per element (text, CDATA and references concatenated) and trimmed once at
//! the end, so `a &amp; b` keeps its inner spaces; mixed content also keeps its order
//! (`lead`, and each child's `tail`), which SSML needs.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::Limits;
use super::error::{InstructionError, Position};

/// One element of the source document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Concatenated, trimmed character data of this element (not of its children).
    pub text: String,
    /// Mixed content in order, for SSML in `<Say>`: the character data before the first
    /// child (untrimmed), and after each child its `tail` (the data up to the next child).
    pub lead: String,
    pub tail: String,
    /// Position of the element's `<`.
    pub pos: Position,
}

/// Reads `xml` into the root element, enforcing `limits` (size is checked by the caller).
pub(crate) fn read(xml: &[u8], limits: &Limits) -> Result<Element, InstructionError> {
    let src = std::str::from_utf8(xml).map_err(|e| InstructionError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let mut reader = Reader::from_str(src);
    let malformed = |reader: &Reader<&[u8]>, message: String| InstructionError::Malformed {
        message,
        pos: Position::at(xml, reader.error_position()),
    };

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;

    loop {
        let start = reader.buffer_position();
        // Computed only when needed: Position::at is O(offset), so calling it per event
        // would make a document of many small events quadratic.
        let pos = || Position::at(xml, start);
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(InstructionError::Malformed {
                        message: "content after the root element".into(),
                        pos: pos(),
                    });
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(InstructionError::TooDeep {
                        max: limits.max_depth,
                        pos: pos(),
                    });
                }
                if !stack.is_empty() {
                    elements += 1;
                    if elements > limits.max_verbs {
                        return Err(InstructionError::TooManyVerbs {
                            max: limits.max_verbs,
                            pos: pos(),
                        });
                    }
                }
                let element = open(e, pos())?;
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match (check_end_names defaults to true).
                let Some(element) = stack.pop() else {
                    return Err(InstructionError::Malformed {
                        message: "unexpected end tag".into(),
                        pos: pos(),
                    });
                };
                close(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                let text = t.xml_content(XmlVersion::Implicit1_0);
                append_text(&mut stack, &text, pos)?;
            }
            Event::CData(c) => {
                let text = c.xml_content(XmlVersion::Implicit1_0);
                append_text(&mut stack, &text, pos)?;
            }
            Event::GeneralRef(r) => {
                let resolved: String = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) | Err(_) => {
                            return Err(InstructionError::Malformed {
                                message: format!("invalid character reference &{};", &*r),
                                pos: pos(),
                            });
                        }
                    }
                } else if let Some(s) = resolve_predefined_entity(&r) {
                    s.to_string()
                } else {
                    return Err(InstructionError::UnknownEntity {
                        name: r.to_string(),
                        pos: pos(),
                    });
                };
                append_text(&mut stack, &resolved, pos)?;
            }
            Event::DocType(_) => return Err(InstructionError::DocType { pos: pos() }),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(InstructionError::Malformed {
            message: format!("unclosed element <{}>", open.name),
            pos: Position::at(xml, xml.len() as u64),
        });
    }
    root.ok_or(InstructionError::Empty)
}

fn open(e: &BytesStart<'_>, pos: Position) -> Result<Element, InstructionError> {
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| InstructionError::Malformed {
            message: err.to_string(),
            pos,
        })?;
        let key = attr.key.as_ref().to_string();
        let value =
            attr.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| match err {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => InstructionError::UnknownEntity { name, pos },
                    other => InstructionError::Malformed {
                        message: other.to_string(),
                        pos,
                    },
                })?
                .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name: e.name().as_ref().to_string(),
        attrs,
        children: Vec::new(),
        text: String::new(),
        lead: String::new(),
        tail: String::new(),
        pos,
    })
}

fn close(stack: &mut [Element], root: &mut Option<Element>, mut element: Element) {
    let trimmed = element.text.trim();
    if trimmed.len() != element.text.len() {
        element.text = trimmed.to_string();
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn append_text(
    stack: &mut [Element],
    text: &str,
    pos: impl Fn() -> Position,
) -> Result<(), InstructionError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.text.push_str(text);
            match parent.children.last_mut() {
                Some(last) => last.tail.push_str(text),
                None => parent.lead.push_str(text),
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(InstructionError::Malformed {
            message: "text outside the root element".into(),
            pos: pos(),
        }),
    }
}
