from celery import shared_task

from partners.models import UtilizationAlert
from partners.services import alert_email_send, alerts_evaluate_all


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def send_utilization_alert_task(self, alert_id: int):
    alert = UtilizationAlert.objects.select_related("service__partner").get(pk=alert_id)
    try:
        alert_email_send(alert=alert)
    except OSError as exc:  # SMTP down: try again later
        raise self.retry(exc=exc) from exc


@shared_task
def evaluate_utilization_alerts_task():
    """Daily (celery-beat): alerts judged on today's commitments; unsent alert emails retried."""
    return alerts_evaluate_all()
