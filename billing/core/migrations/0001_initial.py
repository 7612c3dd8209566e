"""The kernel takes over two models of the partners app: their tables stay as they are (state only)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("partners", "0015_import_jobs"),  # where the tables were made
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='IdempotentRequest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(max_length=200)),
                ('token', models.CharField(max_length=200)),
                ('status', models.PositiveSmallIntegerField(default=0)),
                ('location', models.CharField(blank=True, max_length=500)),
                ('body', models.TextField(blank=True)),
                ('request_digest', models.CharField(blank=True, max_length=64)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'partners_idempotentrequest',
                'constraints': [models.UniqueConstraint(fields=('scope', 'token'), name='idempotent_once')],
            },
        ),
        migrations.CreateModel(
            name='ImportJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(max_length=40)),
                ('file_name', models.CharField(max_length=255)),
                ('path', models.CharField(blank=True, max_length=500)),
                ('size', models.BigIntegerField(default=0)),
                ('status', models.CharField(choices=[('queued', 'waiting to be checked'), ('checking', 'checking'), ('checked', 'checked: ready to import'), ('refused', 'refused: nothing imported'), ('confirmed', 'waiting to be imported'), ('importing', 'importing'), ('imported', 'imported'), ('failed', 'failed: nothing imported'), ('discarded', 'discarded')], db_index=True, default='queued', max_length=12)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('checked_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('read_as', models.CharField(blank=True, max_length=100)),
                ('rows', models.PositiveIntegerField(default=0)),
                ('created', models.PositiveIntegerField(default=0)),
                ('updated', models.PositiveIntegerField(default=0)),
                ('unchanged', models.PositiveIntegerField(default=0)),
                ('bad_rows', models.PositiveIntegerField(default=0)),
                ('error_count', models.PositiveIntegerField(default=0)),
                ('errors', models.JSONField(blank=True, default=list)),
                ('warning_count', models.PositiveIntegerField(default=0)),
                ('warnings', models.JSONField(blank=True, default=list)),
                ('fault', models.TextField(blank=True)),
                ('confirmed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'partners_importjob',
                'ordering': ('-created_at',),
            },
        ),
        ]),
    ]
