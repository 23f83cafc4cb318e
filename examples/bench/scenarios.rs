//! The sipp scenarios and the audio file the benchmark drives: a hold
//! caller whose SDP points every call's RTP at our one receiver, and the
//! baseline hold server (sipp's own `rtp_stream` player).

use std::path::Path;

const ACK_OR_BYE_HEADERS: &str =
    "      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bench@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]";

/// A caller that holds for `hold_ms` with its media at `rtp_port` on
/// 127.0.0.1 (the receiver), sending no RTP itself.
pub fn caller(rtp_port: u16, hold_ms: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench hold caller">
  <send retrans="500">
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bench@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:bench@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=bench 1 1 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio {rtp_port} RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
{ACK_OR_BYE_HEADERS}
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
{ACK_OR_BYE_HEADERS}
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"#
    )
}

/// sipp as a hold server: answers, then loops `wav` (PCMU) with its own
/// `rtp_stream` player until BYE.
pub fn sipp_hold_server(wav: &Path) -> String {
    let wav = wav.display();
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench sipp hold server">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:hold@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=hold 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <nop>
    <action>
      <exec rtp_stream="{wav},-1,0"/>
    </action>
  </nop>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#
    )
}

/// The hold music as a μ-law WAV file, 8 kHz mono, for sipp's player:
/// the same audio pinless sends.
pub fn write_pcmu_wav(music: &pinless::media::HoldLoop, path: &Path) -> std::io::Result<()> {
    let data: Vec<u8> = (0..music.frames())
        .flat_map(|i| music.frame(pinless::media::Law::Mu, i).to_vec())
        .collect();
    let mut w = Vec::with_capacity(data.len() + 58);
    w.extend(b"RIFF");
    w.extend((50 + data.len() as u32).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(18u32.to_le_bytes());
    w.extend(7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    w.extend(1u16.to_le_bytes());
    w.extend(8000u32.to_le_bytes());
    w.extend(8000u32.to_le_bytes());
    w.extend(1u16.to_le_bytes());
    w.extend(8u16.to_le_bytes());
    w.extend(0u16.to_le_bytes());
    w.extend(b"fact");
    w.extend(4u32.to_le_bytes());
    w.extend((data.len() as u32).to_le_bytes());
    w.extend(b"data");
    w.extend((data.len() as u32).to_le_bytes());
    w.extend(data);
    std::fs::write(path, w)
}
