"""Phone numbers: read in the desk's region (or E.164) and store as E.164 (phonenumbers, its
metadata imported when a number is read, not by every command that imports this module)."""

from __future__ import annotations

from functools import lru_cache

from cxdesk.i18n import _


@lru_cache(maxsize=1024)
def normalise_phone(value: str, region: str = "US") -> str:
    """Return ``value`` as E.164 (``+14155552671``) or raise ValueError with a clear message.

    ``1-415-555-2671``, ``(415) 555-2671`` and ``+1 415 555 2671`` all read in region US.
    Remembered (a check-in reads its customer's number, then its SMS's recipient: the same);
    a refusal is not, its message is in the language of the moment.
    """
    import phonenumbers

    text = value.strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        hint = _example(region)
        raise ValueError(_("not a phone number (expected e.g. {hint})").format(hint=hint)) from None
    if not phonenumbers.is_valid_number(number):
        hint = _example(region)
        raise ValueError(_("not a valid phone number (expected e.g. {hint})").format(hint=hint))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _example(region: str) -> str:
    """A mobile number of ``region`` as its people write it, for an error message."""
    import phonenumbers

    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example:
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return _("+<country code> <number>")
