-- One database per service (docker-compose.yml mounts this into postgres:15).
CREATE DATABASE udders_order;
CREATE DATABASE udders_validation;
CREATE DATABASE udders_credit;
CREATE DATABASE udders_inventory;
CREATE DATABASE udders_payment;
CREATE DATABASE udders_fulfillment;
CREATE DATABASE udders_validation_us;
CREATE DATABASE udders_notification;
CREATE DATABASE udders_insights;
