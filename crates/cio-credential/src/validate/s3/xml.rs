//! The S3 XML documents validate reads: error documents, bucket locations and object
//! listings. Element names are matched without their namespace, as servers differ in it.

/// An S3 error document (`<Error><Code>..</Code><Message>..</Message>...</Error>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ErrorDoc {
    pub code: String,
    pub message: String,
    /// `<Region>`, sent with region errors.
    pub region: Option<String>,
}

/// One page of a `ListObjectsV2` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ListPage {
    pub keys: Vec<String>,
    /// `<CommonPrefixes><Prefix>` (with a delimiter).
    pub prefixes: Vec<String>,
    /// The token of the next page, when the listing is truncated.
    pub next: Option<String>,
    /// `<EncodingType>`: `url` when the keys and prefixes are URL-encoded.
    pub encoding: Option<String>,
}

impl ListPage {
    /// The page with its keys and prefixes decoded as minio-go decodes them (`decodeS3Name`:
    /// `url.QueryUnescape` when the encoding type is `url`, else as sent).
    pub(crate) fn decoded(mut self) -> Result<ListPage, super::S3Failure> {
        if self.encoding.as_deref() != Some("url") {
            return Ok(self);
        }
        let decode = |names: &mut Vec<String>| {
            for name in names.iter_mut() {
                match crate::validate::net::gourl::query_unescape(name) {
                    Ok(plain) => *name = plain,
                    Err(escape) => {
                        return Err(super::S3Failure::Undecodable {
                            key: name.clone(),
                            escape,
                        });
                    }
                }
            }
            Ok(())
        };
        decode(&mut self.keys)?;
        decode(&mut self.prefixes)?;
        Ok(self)
    }
}

fn document(body: &[u8]) -> Option<roxmltree::Document<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    roxmltree::Document::parse(text.trim_start_matches('\u{feff}')).ok()
}

fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or_default().to_string())
}

/// The error document in `body`, if it is one. A key named in it (`<Key>`) may hold a
/// character XML cannot carry when the server writes it raw (moto: a `GET` of `q\x1by/config`
/// answers 404 with the key in the document): such characters are read as U+FFFD, so the
/// error's code is still read.
pub(crate) fn error_doc(body: &[u8]) -> Option<ErrorDoc> {
    let text = std::str::from_utf8(body).ok()?;
    let readable: String = text
        .chars()
        .map(|c| if not_in_xml(c) { '\u{fffd}' } else { c })
        .collect();
    let doc = roxmltree::Document::parse(readable.trim_start_matches('\u{feff}')).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "Error" {
        return None;
    }
    Some(ErrorDoc {
        code: child_text(root, "Code").unwrap_or_default(),
        message: child_text(root, "Message").unwrap_or_default(),
        region: child_text(root, "Region").filter(|r| !r.is_empty()),
    })
}

/// The region of a `GetBucketLocation` answer, as minio-go reads it: empty is `us-east-1`,
/// `EU` is `eu-west-1`. `None`: not a location document.
pub(crate) fn location(body: &[u8]) -> Option<String> {
    let doc = document(body)?;
    let root = doc.root_element();
    if root.tag_name().name() != "LocationConstraint" {
        return None;
    }
    Some(match root.text().unwrap_or_default().trim() {
        "" => "us-east-1".to_string(),
        "EU" => "eu-west-1".to_string(),
        other => other.to_string(),
    })
}

/// The first character of a listing (a body that opens `<ListBucketResult`) that XML 1.0
/// cannot hold, which Go's decoder refuses; `None` for any other body.
pub(crate) fn illegal_in_listing(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<ListBucketResult") {
        return None;
    }
    text.chars().find(|c| not_in_xml(*c))
}

/// A character XML 1.0 cannot hold (its `Char` production: no C0 control but tab, line feed
/// and carriage return; not U+FFFE or U+FFFF).
fn not_in_xml(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// A `ListObjectsV2` page. `None`: not a listing.
pub(crate) fn list_page(body: &[u8]) -> Option<ListPage> {
    let doc = document(body)?;
    let root = doc.root_element();
    if root.tag_name().name() != "ListBucketResult" {
        return None;
    }
    let mut page = ListPage::default();
    for child in root.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "Contents" => page.keys.extend(child_text(child, "Key")),
            "CommonPrefixes" => page.prefixes.extend(child_text(child, "Prefix")),
            _ => {}
        }
    }
    let truncated = child_text(root, "IsTruncated").is_some_and(|t| t.trim() == "true");
    page.next = child_text(root, "NextContinuationToken").filter(|t| truncated && !t.is_empty());
    page.encoding = child_text(root, "EncodingType");
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_naming_a_key_with_a_raw_control_character_is_read() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Key>q\u{1b}y/config</Key></Error>";
        assert_eq!(
            error_doc(body.as_bytes()).map(|d| d.code),
            Some("NoSuchKey".into())
        );
    }

    #[test]
    fn a_listing_with_a_raw_control_character_names_it() {
        let raw = "<?xml version=\"1.0\"?><ListBucketResult><Contents><Key>p\u{1b}x/config</Key></Contents></ListBucketResult>";
        assert_eq!(list_page(raw.as_bytes()), None);
        assert_eq!(illegal_in_listing(raw.as_bytes()), Some('\u{1b}'));
        let fine =
            "<ListBucketResult><Contents><Key>p\tx/config</Key></Contents></ListBucketResult>";
        assert_eq!(illegal_in_listing(fine.as_bytes()), None);
        assert_eq!(illegal_in_listing(b"<html>\x1b</html>"), None);
    }

    #[test]
    fn error_documents() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; expecting 'nl-ams'</Message><Region>nl-ams</Region></Error>"#;
        assert_eq!(
            error_doc(doc),
            Some(ErrorDoc {
                code: "AuthorizationHeaderMalformed".into(),
                message: "the region 'us-east-1' is wrong; expecting 'nl-ams'".into(),
                region: Some("nl-ams".into()),
            })
        );
        assert_eq!(error_doc(b"<html><body>MinIO Console</body></html>"), None);
        assert_eq!(error_doc(b"{\"error\":1}"), None);
    }

    #[test]
    fn locations() {
        let ns = r#"<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#;
        assert_eq!(
            location(format!("{ns}</LocationConstraint>").as_bytes()).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            location(format!("{ns}EU</LocationConstraint>").as_bytes()).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            location(format!("{ns}nl-ams</LocationConstraint>").as_bytes()).as_deref(),
            Some("nl-ams")
        );
        assert_eq!(location(b"<ListBucketResult/>"), None);
    }

    #[test]
    fn listings() {
        let body = br#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken><Contents><Key>p/keys/a</Key></Contents><Contents><Key>p/keys/b</Key></Contents><CommonPrefixes><Prefix>p/data/</Prefix></CommonPrefixes></ListBucketResult>"#;
        assert_eq!(
            list_page(body),
            Some(ListPage {
                keys: vec!["p/keys/a".into(), "p/keys/b".into()],
                prefixes: vec!["p/data/".into()],
                next: Some("tok".into()),
                encoding: None,
            })
        );
        assert_eq!(list_page(b"<html/>"), None);
    }

    /// minio-go decodes keys only when the answer says they are encoded, with Go's
    /// `url.QueryUnescape` (`+` is a space), and fails on an escape that is not one.
    #[test]
    fn encoded_listings_are_decoded_as_minio_go_decodes_them() {
        let page = |encoding: &str, key: &str| {
            list_page(format!("<ListBucketResult><IsTruncated>false</IsTruncated>{encoding}<Contents><Key>{key}</Key></Contents></ListBucketResult>").as_bytes())
                .expect("a listing")
                .decoded()
        };
        let url = "<EncodingType>url</EncodingType>";
        assert_eq!(
            page(url, "pct%25/keys/a+b").unwrap().keys,
            ["pct%/keys/a b"]
        );
        assert_eq!(page("", "pct%/keys/a+b").unwrap().keys, ["pct%/keys/a+b"]);
        assert_eq!(
            page(url, "pct%/keys/a"),
            Err(super::super::S3Failure::Undecodable {
                key: "pct%/keys/a".into(),
                escape: "%/k".into()
            })
        );
        assert!(matches!(
            page(url, "end%4"),
            Err(super::super::S3Failure::Undecodable { escape, .. }) if escape == "%4"
        ));
    }
}
